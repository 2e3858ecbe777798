// Pure parts of retrieve: mode names, reciprocal rank fusion, context assembly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "retrieve/retrieve.h"

namespace ragd {
namespace {

TEST(SearchMode, ParseAndName) {
    EXPECT_EQ(parse_search_mode("hybrid"), SearchMode::Hybrid);
    EXPECT_EQ(parse_search_mode("keyword"), SearchMode::Keyword);
    EXPECT_EQ(parse_search_mode("vector"), SearchMode::Vector);
    for (SearchMode m : {SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector}) {
        EXPECT_EQ(parse_search_mode(search_mode_name(m)), m);
    }
    EXPECT_STREQ(search_mode_name(SearchMode::Keyword), "keyword");
    for (const char* bad : {"", "Hybrid", "bm25", "vector ", "semantic"}) {
        try {
            parse_search_mode(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        }
    }
}

double rrf(int k, int rank) {
    return 1.0 / (k + rank);
}

TEST(RrfFuse, HandComputedScores) {
    // keyword: 10, 20, 30    vector: 20, 40, 10
    std::vector<Fused> f = rrf_fuse({10, 20, 30}, {20, 40, 10}, 60);
    ASSERT_EQ(f.size(), 4u);
    // 20: k2 + v1 = 1/62 + 1/61; 10: k1 + v3 = 1/61 + 1/63; 30: k3; 40: v2.
    EXPECT_EQ(f[0].chunk_id, 20);
    EXPECT_DOUBLE_EQ(f[0].score, rrf(60, 2) + rrf(60, 1));
    EXPECT_EQ(f[0].keyword_rank, 2);
    EXPECT_EQ(f[0].vector_rank, 1);
    EXPECT_EQ(f[1].chunk_id, 10);
    EXPECT_DOUBLE_EQ(f[1].score, rrf(60, 1) + rrf(60, 3));
    EXPECT_EQ(f[1].keyword_rank, 1);
    EXPECT_EQ(f[1].vector_rank, 3);
    // 40 (v2 = 1/62) beats 30 (k3 = 1/63).
    EXPECT_EQ(f[2].chunk_id, 40);
    EXPECT_DOUBLE_EQ(f[2].score, rrf(60, 2));
    EXPECT_EQ(f[2].keyword_rank, 0);
    EXPECT_EQ(f[2].vector_rank, 2);
    EXPECT_EQ(f[3].chunk_id, 30);
    EXPECT_DOUBLE_EQ(f[3].score, rrf(60, 3));
    EXPECT_EQ(f[3].vector_rank, 0);
}

TEST(RrfFuse, FirstInBothListsScoresTwoOverSixtyOne) {
    std::vector<Fused> f = rrf_fuse({5}, {5}, 60);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_DOUBLE_EQ(f[0].score, 2.0 / 61);
    EXPECT_EQ(f[0].keyword_rank, 1);
    EXPECT_EQ(f[0].vector_rank, 1);
    // The constant is a parameter.
    EXPECT_DOUBLE_EQ(rrf_fuse({5}, {5}, 1)[0].score, 2.0 / 2);
}

TEST(RrfFuse, TiesBreakByKeywordRankThenChunkId) {
    // 7 is k1 only, 3 is v1 only: both 1/61; the one with a keyword rank wins.
    std::vector<Fused> f = rrf_fuse({7}, {3}, 60);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].chunk_id, 7);
    EXPECT_EQ(f[1].chunk_id, 3);
    EXPECT_EQ(f[0].score, f[1].score);

    // 1: k2 + v3, 2: k3 + v2 -> equal sums; keyword rank 2 < 3, so 1 first. Then 9 (k1)
    // and 8 (v1) tie at 1/61.
    f = rrf_fuse({9, 1, 2}, {8, 2, 1}, 60);
    ASSERT_EQ(f.size(), 4u);
    EXPECT_EQ(f[0].chunk_id, 1);
    EXPECT_EQ(f[1].chunk_id, 2);
    EXPECT_EQ(f[0].score, f[1].score);
    EXPECT_DOUBLE_EQ(f[0].score, rrf(60, 2) + rrf(60, 3));
    EXPECT_EQ(f[2].chunk_id, 9);
    EXPECT_EQ(f[3].chunk_id, 8);
}

TEST(RrfFuse, DisjointAndEmptyLists) {
    std::vector<Fused> f = rrf_fuse({1, 2}, {3, 4}, 60);
    ASSERT_EQ(f.size(), 4u);
    // k1 and v1 tie (1/61): keyword first; then k2 and v2 tie (1/62).
    std::vector<int64_t> ids;
    for (const Fused& x : f) ids.push_back(x.chunk_id);
    EXPECT_EQ(ids, (std::vector<int64_t>{1, 3, 2, 4}));
    EXPECT_DOUBLE_EQ(f[0].score, rrf(60, 1));
    EXPECT_DOUBLE_EQ(f[3].score, rrf(60, 2));

    EXPECT_TRUE(rrf_fuse({}, {}, 60).empty());
    f = rrf_fuse({3, 1, 2}, {}, 60);
    ids.clear();
    for (const Fused& x : f) ids.push_back(x.chunk_id);
    EXPECT_EQ(ids, (std::vector<int64_t>{3, 1, 2}));  // one list keeps its order
    EXPECT_EQ(f[2].keyword_rank, 3);
}

TEST(RrfFuse, DuplicateIdsCountOnceAtTheirBestRank) {
    std::vector<Fused> f = rrf_fuse({1, 1, 2}, {2, 2}, 60);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].chunk_id, 2);  // k3 + v1
    EXPECT_DOUBLE_EQ(f[0].score, rrf(60, 3) + rrf(60, 1));
    EXPECT_EQ(f[1].chunk_id, 1);  // k1
    EXPECT_DOUBLE_EQ(f[1].score, rrf(60, 1));
}

TEST(RrfFuse, Deterministic) {
    std::vector<int64_t> kw, vec;
    for (int i = 0; i < 200; i++) kw.push_back((i * 37) % 211);
    for (int i = 0; i < 200; i++) vec.push_back((i * 53) % 211);
    std::vector<Fused> a = rrf_fuse(kw, vec, 60), b = rrf_fuse(kw, vec, 60);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_EQ(a[i].chunk_id, b[i].chunk_id);
        if (i > 0) {
            EXPECT_GE(a[i - 1].score, a[i].score);
        }
    }
}

Hit make_hit(int64_t id, const std::string& doc, int page_start, int page_end,
             const std::string& text) {
    Hit h;
    h.chunk.id = id;
    h.chunk.document = doc;
    h.chunk.page_start = page_start;
    h.chunk.page_end = page_end;
    h.chunk.text = text;
    return h;
}

TEST(AssembleContext, BudgetNumberingAndSkip) {
    std::string big = "one two three four five six seven eight nine ten";  // 10 tokens
    std::string small = "alpha beta";                                      // 2 tokens
    std::string mid = "a b c d e";                                         // 5 tokens
    ASSERT_EQ(approx_tokens(big), 10);
    ASSERT_EQ(approx_tokens(small), 2);
    ASSERT_EQ(approx_tokens(mid), 5);
    std::vector<Hit> hits = {make_hit(1, "a", 1, 1, mid), make_hit(2, "b", 1, 1, big),
                             make_hit(3, "c", 1, 1, small), make_hit(4, "d", 1, 1, mid)};

    // 5 fits; 10 does not (15 > 12); 2 fits (7); 5 fits exactly (12).
    std::vector<Passage> p = assemble_context(hits, 12);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].number, 1);
    EXPECT_EQ(p[0].hit.chunk.id, 1);
    EXPECT_EQ(p[1].number, 2);
    EXPECT_EQ(p[1].hit.chunk.id, 3);  // the big one was skipped, numbering stays dense
    EXPECT_EQ(p[2].number, 3);
    EXPECT_EQ(p[2].hit.chunk.id, 4);

    p = assemble_context(hits, 11);  // 5 + 2 = 7; the last 5 would make 12
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[1].hit.chunk.id, 3);

    p = assemble_context(hits, 1000);
    ASSERT_EQ(p.size(), 4u);
    for (size_t i = 0; i < p.size(); i++) {
        EXPECT_EQ(p[i].number, static_cast<int>(i) + 1);
        EXPECT_EQ(p[i].hit.chunk.id, hits[i].chunk.id);
    }

    EXPECT_TRUE(assemble_context(hits, 0).empty());
    EXPECT_TRUE(assemble_context(hits, -5).empty());
    EXPECT_TRUE(assemble_context({}, 100).empty());
}

TEST(FormatContext, NumbersNamesAndPages) {
    std::vector<Hit> hits = {make_hit(1, "manual.pdf", 3, 3, "Press the red button."),
                             make_hit(2, "notes.md", 4, 6, "Line one.\nLine two.")};
    std::vector<Passage> p = assemble_context(hits, 100);
    EXPECT_EQ(format_context(p),
              "[1] manual.pdf p.3\nPress the red button.\n\n"
              "[2] notes.md p.4-6\nLine one.\nLine two.\n\n");
    EXPECT_EQ(format_context({}), "");
}

}  // namespace
}  // namespace ragd
