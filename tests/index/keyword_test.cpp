#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "index/internal.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

std::vector<int64_t> ids_of(const std::vector<KeywordHit>& hits) {
    std::vector<int64_t> ids;
    for (const auto& h : hits) ids.push_back(h.chunk_id);
    return ids;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

class KeywordTest : public ::testing::Test {
  protected:
    void SetUp() override {
        kw = std::make_unique<KeywordIndex>(dir / "xapian");
        kw->put({
            {1, 10, "legal", "The termination of this agreement requires written notice."},
            {2, 10, "legal", "Either party may terminate the lease after twelve months."},
            {3, 11, "legal", "The tenant shall pay rent on the first day of each month."},
            {4, 20, "manuals", "Press the power button to terminate the running program."},
            {5, 20, "manuals", "Insert the battery and close the cover of the device."},
            {6, 21, "", "Notice: the quick brown fox jumps over the lazy dog."},
        });
        kw->commit(6);
    }
    std::vector<int64_t> find(const std::string& q, IndexFilter f = {}) {
        return sorted(ids_of(kw->search(q, 10, f)));
    }

    test::TempDir dir;
    std::unique_ptr<KeywordIndex> kw;
};

TEST_F(KeywordTest, AppliedSeqAndCount) {
    EXPECT_EQ(kw->applied_seq(), 6);
    EXPECT_EQ(kw->doc_count(), 6);
}

TEST_F(KeywordTest, Stemming) {
    EXPECT_EQ(find("terminate"), (std::vector<int64_t>{1, 2, 4}));
    EXPECT_EQ(find("termination"), (std::vector<int64_t>{1, 2, 4}));
    EXPECT_EQ(find("months"), (std::vector<int64_t>{2, 3}));
}

TEST_F(KeywordTest, ScoresAreBm25Ordered) {
    auto hits = kw->search("tenant rent", 10, {});
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].chunk_id, 3);
    for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
    EXPECT_GT(hits[0].score, 0.0);
}

TEST_F(KeywordTest, KLimitsResults) {
    EXPECT_EQ(kw->search("the terminate notice", 2, {}).size(), 2u);
    EXPECT_TRUE(kw->search("terminate", 0, {}).empty());
}

TEST_F(KeywordTest, StopWordsAndEmptyQueries) {
    EXPECT_TRUE(find("").empty());
    EXPECT_TRUE(find("   ").empty());
    EXPECT_TRUE(find("the of and").empty());
    EXPECT_TRUE(find("The").empty());
    EXPECT_TRUE(find("THE OF").empty());
    EXPECT_TRUE(find("\"the of\"").empty());
    EXPECT_TRUE(find("!!! ???").empty());
    // Stop words do not dilute a real query.
    EXPECT_EQ(find("the battery"), (std::vector<int64_t>{5}));
}

TEST_F(KeywordTest, PhraseQuery) {
    EXPECT_EQ(find("\"written notice\""), (std::vector<int64_t>{1}));
    EXPECT_EQ(find("\"notice written\""), (std::vector<int64_t>{}));
    EXPECT_EQ(find("\"quick brown fox\""), (std::vector<int64_t>{6}));
}

TEST_F(KeywordTest, BooleanAndLoveHate) {
    EXPECT_EQ(find("terminate AND lease"), (std::vector<int64_t>{2}));
    EXPECT_EQ(find("terminate NOT lease"), (std::vector<int64_t>{1, 4}));
    EXPECT_EQ(find("terminate -program"), (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(find("+notice fox"), (std::vector<int64_t>{1, 6}));
    EXPECT_EQ(find("battery OR rent"), (std::vector<int64_t>{3, 5}));
}

TEST_F(KeywordTest, Filters) {
    IndexFilter legal{"legal", 0};
    EXPECT_EQ(find("terminate", legal), (std::vector<int64_t>{1, 2}));
    IndexFilter manuals{"manuals", 0};
    EXPECT_EQ(find("terminate", manuals), (std::vector<int64_t>{4}));
    IndexFilter doc10{"", 10};
    EXPECT_EQ(find("terminate", doc10), (std::vector<int64_t>{1, 2}));
    IndexFilter both{"legal", 11};
    EXPECT_EQ(find("rent terminate", both), (std::vector<int64_t>{3}));
    IndexFilter none{"nosuch", 0};
    EXPECT_TRUE(find("terminate", none).empty());
    // A collection name that is too long for a Xapian term still works.
    std::string long_name(1000, 'c');
    kw->put({{7, 30, long_name, "terminate everything"}});
    EXPECT_EQ(find("terminate", IndexFilter{long_name, 0}), (std::vector<int64_t>{7}));
    EXPECT_TRUE(find("terminate", IndexFilter{long_name + "x", 0}).empty());
}

TEST_F(KeywordTest, MalformedQueryIsInvalidArgument) {
    for (const char* q : {"foo AND", "AND", "NOT foo", "OR OR", "terminate AND NOT"}) {
        try {
            kw->search(q, 10, {});
            ADD_FAILURE() << "no error for " << q;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::Code::InvalidArgument) << q;
        }
    }
}

TEST_F(KeywordTest, ReplaceAndRemove) {
    kw->put({{1, 10, "legal", "bananas and apples"}});  // replace, same id
    EXPECT_EQ(kw->doc_count(), 6);
    EXPECT_EQ(find("banana"), (std::vector<int64_t>{1}));
    EXPECT_EQ(find("terminate"), (std::vector<int64_t>{2, 4}));
    kw->remove({2, 4, 999});  // 999 absent: no-op
    EXPECT_EQ(kw->doc_count(), 4);
    EXPECT_TRUE(find("terminate").empty());
}

// Closing without commit(): Xapian may flush the documents, but applied_seq only moves
// with commit(), so the outbox replays them (idempotently) either way.
TEST_F(KeywordTest, AppliedSeqMovesOnlyWithCommit) {
    kw->put({{8, 40, "", "ephemeral zebra"}});
    kw.reset();
    kw = std::make_unique<KeywordIndex>(dir / "xapian");
    EXPECT_EQ(kw->applied_seq(), 6);
    kw->put({{8, 40, "", "ephemeral zebra"}});  // the replay
    kw->commit(7);
    EXPECT_EQ(kw->doc_count(), 7);
    EXPECT_EQ(find("zebra"), (std::vector<int64_t>{8}));
}

TEST_F(KeywordTest, ReaderWithoutWriterSeesCommits) {
    KeywordIndex reader(dir / "xapian");
    EXPECT_EQ(reader.doc_count(), 6);
    EXPECT_EQ(sorted(ids_of(reader.search("terminate", 10, {}))), (std::vector<int64_t>{1, 2, 4}));
    kw->put({{9, 50, "", "terminate again"}});
    kw->commit(7);
    EXPECT_EQ(reader.doc_count(), 7);
}

TEST_F(KeywordTest, ResetEmpties) {
    kw->reset();
    EXPECT_EQ(kw->applied_seq(), std::nullopt);
    EXPECT_EQ(kw->doc_count(), 0);
    EXPECT_TRUE(find("terminate").empty());
}

TEST(KeywordIndex, MissingDatabase) {
    test::TempDir dir;
    KeywordIndex kw(dir / "xapian");
    EXPECT_EQ(kw.doc_count(), 0);
    EXPECT_TRUE(kw.search("anything", 10, {}).empty());
    EXPECT_EQ(kw.applied_seq(), std::nullopt);  // creates it
    EXPECT_TRUE(std::filesystem::exists(dir / "xapian"));
}

TEST(KeywordIndex, CorruptDatabaseIsRecreated) {
    test::TempDir dir;
    {
        KeywordIndex kw(dir / "xapian");
        kw.put({{1, 1, "", "hello world"}});
        kw.commit(1);
    }
    // Clobber every file of the database.
    for (const auto& f : std::filesystem::directory_iterator(dir / "xapian")) {
        test::write_file(f.path().string(), "garbage, not a xapian table");
    }
    KeywordIndex kw(dir / "xapian");
    EXPECT_EQ(kw.applied_seq(), std::nullopt);
    EXPECT_EQ(kw.doc_count(), 0);
    kw.put({{2, 1, "", "hello again"}});
    kw.commit(2);
    EXPECT_EQ(kw.applied_seq(), 2);
    EXPECT_EQ(ids_of(kw.search("hello", 10, {})), (std::vector<int64_t>{2}));
}

TEST(KeywordIndex, SecondWriterIsBusy) {
    test::TempDir dir;
    KeywordIndex a(dir / "xapian");
    a.commit(0);
    KeywordIndex b(dir / "xapian");
    try {
        b.put({{1, 1, "", "x"}});
        ADD_FAILURE() << "second writer opened";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::Busy);
    }
}

}  // namespace
}  // namespace ragd
