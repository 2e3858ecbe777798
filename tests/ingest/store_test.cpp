#include "ingest/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "config/config.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using test::TempDir;

// A document whose chunks are its pages, one chunk per page.
struct Fixture {
    DocumentRow doc;
    std::vector<std::string> pages;
    std::vector<NewChunk> chunks;
};

Fixture make_doc(const std::string& path, const std::vector<std::string>& pages) {
    Fixture f;
    f.pages = pages;
    std::string text;
    for (size_t i = 0; i < pages.size(); ++i) {
        if (i > 0) text += "\n\f";
        NewChunk c;
        c.page_start = c.page_end = static_cast<int>(i + 1);
        c.start = static_cast<int64_t>(text.size());
        text += pages[i];
        c.end = static_cast<int64_t>(text.size());
        c.text = pages[i];
        c.n_tokens = approx_tokens(c.text);
        f.chunks.push_back(c);
    }
    f.doc.path = path;
    f.doc.name = path.substr(path.rfind('/') + 1);
    f.doc.kind = "text";
    f.doc.hash = sha256_hex(text);
    f.doc.bytes = static_cast<int64_t>(text.size());
    return f;
}

int64_t put(Store& s, const Fixture& f, Store::PutResult* r = nullptr) {
    int64_t id = 0;
    Store::PutResult res = s.put_document(f.doc, f.pages, f.chunks, &id);
    if (r) *r = res;
    return id;
}

TEST(Store, Sha256MatchesKnownVectors) {
    // FIPS 180-2 examples.
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Store, CreatesSchemaInWalModeAndReopens) {
    TempDir dir;
    {
        Store s(dir / "data");
        sqlite3_stmt* st = nullptr;
        ASSERT_EQ(sqlite3_prepare_v2(s.handle(), "PRAGMA journal_mode", -1, &st, nullptr),
                  SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
        sqlite3_finalize(st);
        put(s, make_doc("/a.txt", {"alpha"}));
    }
    Store again(dir / "data");
    EXPECT_EQ(again.counts().documents, 1);
}

TEST(Store, RejectsFileThatIsNotADatabase) {
    TempDir dir;
    test::write_file(dir / "ragd.db", std::string(4096, 'x'));
    try {
        Store s(dir.path());
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::Corrupt) << e.what();
    }
}

TEST(Store, RejectsNewerSchema) {
    TempDir dir;
    {
        Store s(dir.path());
        ASSERT_EQ(sqlite3_exec(s.handle(), "PRAGMA user_version=99", nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    EXPECT_THROW(Store s(dir.path()), Error);
}

TEST(Store, PutAddsThenSameBytesAreUnchanged) {
    TempDir dir;
    Store s(dir.path());
    Fixture f = make_doc("/docs/a.txt", {"page one text", "page two text"});
    Store::PutResult r;
    int64_t id = put(s, f, &r);
    EXPECT_EQ(r, Store::PutResult::Added);
    int64_t id2 = put(s, f, &r);
    EXPECT_EQ(r, Store::PutResult::Unchanged);
    EXPECT_EQ(id, id2);
    StoreCounts c = s.counts();
    EXPECT_EQ(c.documents, 1);
    EXPECT_EQ(c.pages, 2);
    EXPECT_EQ(c.chunks, 2);
    // Only the first put wrote outbox ops.
    EXPECT_EQ(s.ops_after(0, 100).size(), 2u);
}

TEST(Store, ChangedFileReplacesChunksAndKeepsId) {
    TempDir dir;
    Store s(dir.path());
    int64_t id = put(s, make_doc("/docs/a.txt", {"old text", "more old"}));
    std::vector<ChunkRow> old_chunks = s.chunks_of_document(id);
    ASSERT_EQ(old_chunks.size(), 2u);

    Store::PutResult r;
    int64_t id2 = put(s, make_doc("/docs/a.txt", {"new text entirely"}), &r);
    EXPECT_EQ(r, Store::PutResult::Replaced);
    EXPECT_EQ(id2, id);
    std::vector<ChunkRow> now = s.chunks_of_document(id);
    ASSERT_EQ(now.size(), 1u);
    EXPECT_EQ(now[0].text, "new text entirely");
    EXPECT_GT(now[0].id, old_chunks[1].id);  // ids are never reused
    EXPECT_FALSE(s.chunk(old_chunks[0].id).has_value());
    EXPECT_EQ(s.document(id)->n_pages, 1);

    // Outbox: 2 adds, 2 removes, 1 add, in that order.
    std::vector<IndexOp> ops = s.ops_after(0, 100);
    ASSERT_EQ(ops.size(), 5u);
    EXPECT_EQ(ops[2].kind, IndexOp::Remove);
    EXPECT_EQ(ops[2].chunk_id, old_chunks[0].id);
    EXPECT_EQ(ops[4].kind, IndexOp::Add);
    EXPECT_EQ(ops[4].chunk_id, now[0].id);
}

TEST(Store, DocumentsAreTheirPathsSoSwappedContentLosesNothing) {
    // a.txt gets b.txt's old bytes and b.txt new ones: both must stay searchable, whatever
    // order the jobs run in (identity by hash alone would drop a.txt's content).
    TempDir dir;
    Store s(dir.path());
    Fixture apples = make_doc("/docs/b.txt", {"alpha apples"});
    put(s, apples);
    Fixture a_now = apples;
    a_now.doc.path = "/docs/a.txt";
    Store::PutResult r;
    int64_t a_id = put(s, a_now, &r);
    EXPECT_EQ(r, Store::PutResult::Added);  // same bytes, another path: another document
    int64_t b_id = put(s, make_doc("/docs/b.txt", {"zebra stripes"}), &r);
    EXPECT_EQ(r, Store::PutResult::Replaced);
    EXPECT_NE(a_id, b_id);
    EXPECT_EQ(s.counts().documents, 2);
    EXPECT_EQ(s.chunks_of_document(a_id).at(0).text, "alpha apples");
    EXPECT_EQ(s.chunks_of_document(b_id).at(0).text, "zebra stripes");
}

TEST(Store, UnchangedBytesWithANewCollectionMoveTheDocument) {
    TempDir dir;
    Store s(dir.path());
    Fixture f = make_doc("/a.txt", {"one", "two"});
    int64_t id = put(s, f);
    int64_t seq = s.last_op_seq();
    f.doc.collection = "legal";
    Store::PutResult r;
    put(s, f, &r);
    EXPECT_EQ(r, Store::PutResult::Unchanged);
    EXPECT_EQ(s.document(id)->collection, "legal");
    EXPECT_EQ(s.chunk_ids("legal", 0).size(), 2u);
    // Its chunks are queued for re-indexing under the new collection.
    std::vector<IndexOp> ops = s.ops_after(seq, 100);
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[0].kind, IndexOp::Add);
}

TEST(Store, PutFinishesItsJobInTheSameTransaction) {
    TempDir dir;
    Store s(dir.path());
    int64_t job = s.enqueue_job("/a.txt", "");
    ASSERT_TRUE(s.claim_job());
    Fixture f = make_doc("/a.txt", {"one", "two"});
    int64_t id = 0;
    s.put_document(f.doc, f.pages, f.chunks, &id, job);
    JobRow j = *s.job(job);
    EXPECT_EQ(j.state, "done");
    EXPECT_EQ(j.result, "added");
    EXPECT_EQ(j.document_id, id);
    EXPECT_EQ(j.pages, 2);
    EXPECT_EQ(j.chunks, 2);
}

TEST(Store, RemoveDocumentsIsAllOrNothing) {
    TempDir dir;
    Store s(dir.path());
    int64_t a = put(s, make_doc("/a.txt", {"one"}));
    int64_t b = put(s, make_doc("/b.txt", {"two"}));
    put(s, make_doc("/c.txt", {"three"}));
    EXPECT_EQ(s.remove_documents({a, b, 999}), 2);
    EXPECT_EQ(s.counts().documents, 1);
}

TEST(Store, JobsThatKeepKillingTheProcessFailAfterFiveAttempts) {
    TempDir dir;
    Store s(dir.path());
    int64_t job = s.enqueue_job("/poison.pdf", "");
    for (int attempt = 1; attempt < Store::kMaxJobAttempts; ++attempt) {
        ASSERT_EQ(s.claim_job()->id, job);
        EXPECT_EQ(s.requeue_running_jobs(), 1);  // the process died: try again
    }
    ASSERT_EQ(s.claim_job()->id, job);
    EXPECT_EQ(s.requeue_running_jobs(), 0);
    JobRow j = *s.job(job);
    EXPECT_EQ(j.state, "failed");
    EXPECT_NE(j.error.find("gave up after 5 attempts"), std::string::npos) << j.error;
}

TEST(Store, FailedCountClearsWhenALaterJobForThePathSucceeds) {
    TempDir dir;
    Store s(dir.path());
    int64_t j1 = s.enqueue_job("/a.txt", "");
    s.claim_job();
    s.fail_job(j1, "/a.txt: empty file");
    EXPECT_EQ(s.counts().jobs_failed, 1);
    int64_t j2 = s.enqueue_job("/a.txt", "");
    s.claim_job();
    s.finish_job(j2, Store::PutResult::Added, 1, 1, 1);
    EXPECT_EQ(s.counts().jobs_failed, 0);
}

TEST(Store, RequeuedPendingJobTakesTheLatestCollection) {
    TempDir dir;
    Store s(dir.path());
    int64_t j = s.enqueue_job("/a.txt", "old");
    EXPECT_EQ(s.enqueue_job("/a.txt", "new"), j);
    EXPECT_EQ(s.job(j)->collection, "new");
}

TEST(Store, SpansAreCheckedBeforeWriting) {
    TempDir dir;
    Store s(dir.path());
    Fixture f = make_doc("/a.txt", {"hello world"});
    f.chunks[0].end += 5;  // past the end of the text
    int64_t id;
    EXPECT_THROW(s.put_document(f.doc, f.pages, f.chunks, &id), Error);
    f = make_doc("/a.txt", {"hello world"});
    f.chunks[0].text = "hello";  // text disagrees with the span length
    EXPECT_THROW(s.put_document(f.doc, f.pages, f.chunks, &id), Error);
    f = make_doc("/a.txt", {"hello world"});
    f.chunks[0].page_end = 2;  // no such page
    EXPECT_THROW(s.put_document(f.doc, f.pages, f.chunks, &id), Error);
    EXPECT_EQ(s.counts().documents, 0);
    EXPECT_EQ(s.last_op_seq(), 0);
}

TEST(Store, DocumentTextAndChunkSpansAgree) {
    TempDir dir;
    Store s(dir.path());
    int64_t id = put(s, make_doc("/a.txt", {"first page", "second page", "third"}));
    std::string text = s.document_text(id);
    EXPECT_EQ(text, "first page\n\fsecond page\n\fthird");
    for (const ChunkRow& c : s.chunks_of_document(id))
        EXPECT_EQ(text.substr(c.start, c.end - c.start), c.text);
    std::vector<PageRow> pages = s.pages(id);
    ASSERT_EQ(pages.size(), 3u);
    EXPECT_EQ(pages[2].start, static_cast<int64_t>(text.find("third")));
}

TEST(Store, RemoveDeletesEverythingAndRecordsOps) {
    TempDir dir;
    Store s(dir.path());
    int64_t id = put(s, make_doc("/a.txt", {"one", "two"}));
    put(s, make_doc("/b.txt", {"three"}));
    EXPECT_TRUE(s.remove_document(id));
    EXPECT_FALSE(s.remove_document(id));
    StoreCounts c = s.counts();
    EXPECT_EQ(c.documents, 1);
    EXPECT_EQ(c.pages, 1);
    EXPECT_EQ(c.chunks, 1);
    int removes = 0;
    for (const IndexOp& op : s.ops_after(0, 100)) removes += op.kind == IndexOp::Remove;
    EXPECT_EQ(removes, 2);
}

TEST(Store, ChunkIdsFilterByCollectionAndDocument) {
    TempDir dir;
    Store s(dir.path());
    Fixture a = make_doc("/a.txt", {"a1", "a2"});
    a.doc.collection = "legal";
    Fixture b = make_doc("/b.txt", {"b1"});
    b.doc.collection = "medical";
    int64_t a_id = put(s, a);
    put(s, b);
    EXPECT_EQ(s.chunk_ids("", 0).size(), 3u);
    EXPECT_EQ(s.chunk_ids("legal", 0).size(), 2u);
    EXPECT_EQ(s.chunk_ids("medical", 0).size(), 1u);
    EXPECT_EQ(s.chunk_ids("", a_id).size(), 2u);
    EXPECT_EQ(s.chunk_ids("medical", a_id).size(), 0u);
    std::vector<ChunkRow> rows = s.chunks(s.chunk_ids("legal", 0));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].collection, "legal");
    EXPECT_EQ(rows[0].document, "a.txt");
}

TEST(Store, JobsQueueClaimFinishFailRequeue) {
    TempDir dir;
    Store s(dir.path());
    int64_t j1 = s.enqueue_job("/a.txt", "");
    int64_t j2 = s.enqueue_job("/b.txt", "c");
    EXPECT_EQ(s.enqueue_job("/a.txt", ""), j1);  // already pending: not queued twice
    EXPECT_EQ(s.counts().jobs_pending, 2);

    auto first = s.claim_job();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, j1);
    EXPECT_EQ(first->state, "running");
    EXPECT_EQ(first->attempts, 1);
    EXPECT_EQ(s.enqueue_job("/a.txt", ""), j1);  // running: not queued twice either

    auto second = s.claim_job();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->id, j2);
    EXPECT_FALSE(s.claim_job());

    s.finish_job(j1, Store::PutResult::Added, 7, 2, 3);
    s.fail_job(j2, "/b.txt: encrypted PDF");
    EXPECT_EQ(s.job(j1)->state, "done");
    EXPECT_EQ(s.job(j1)->result, "added");
    EXPECT_EQ(s.job(j1)->chunks, 3);
    EXPECT_EQ(s.job(j2)->state, "failed");
    EXPECT_EQ(s.job(j2)->error, "/b.txt: encrypted PDF");

    // A crash leaves a running job behind; the next owner puts it back in the queue.
    int64_t j3 = s.enqueue_job("/c.txt", "");
    ASSERT_EQ(s.claim_job()->id, j3);
    EXPECT_EQ(s.requeue_running_jobs(), 1);
    auto again = s.claim_job();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, j3);
    EXPECT_EQ(again->attempts, 2);
    EXPECT_EQ(s.jobs("failed").size(), 1u);
    EXPECT_EQ(s.jobs().size(), 3u);
}

TEST(Store, PruneOpsKeepsSequenceHighWaterMark) {
    TempDir dir;
    Store s(dir.path());
    put(s, make_doc("/a.txt", {"one", "two", "three"}));
    EXPECT_EQ(s.last_op_seq(), 3);
    s.prune_ops(2);
    EXPECT_EQ(s.ops_pruned_upto(), 2);
    std::vector<IndexOp> left = s.ops_after(0, 100);
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].seq, 3);
    s.prune_ops(3);
    EXPECT_TRUE(s.ops_after(0, 100).empty());
    EXPECT_EQ(s.last_op_seq(), 3);  // sequence survives an empty table
    s.prune_ops(1);                 // going backwards is a no-op
    EXPECT_EQ(s.ops_pruned_upto(), 3);
    put(s, make_doc("/b.txt", {"four"}));
    EXPECT_EQ(s.ops_after(3, 100).at(0).seq, 4);
}

TEST(Store, DataDirLockIsExclusive) {
    TempDir dir;
    auto a = DataDirLock::try_acquire(dir.path());
    ASSERT_TRUE(a);
    EXPECT_FALSE(DataDirLock::try_acquire(dir.path()));
    a.reset();
    EXPECT_TRUE(DataDirLock::try_acquire(dir.path()));
}

TEST(Store, TwoConnectionsSeeEachOthersWrites) {
    TempDir dir;
    Store a(dir.path());
    Store b(dir.path());
    put(a, make_doc("/a.txt", {"from a"}));
    EXPECT_EQ(b.counts().documents, 1);
    EXPECT_TRUE(b.document_by_path("/a.txt").has_value());
}

}  // namespace
}  // namespace ragd
