// The reranker stage of search() (retrieve.h): a fake reranker with known scores, and a
// random-weight cross-encoder GGUF from the tests' writer.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "generate/bert.h"
#include "retrieve/retrieve.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

// Scores a text by the number in it ("item 17 ..." -> 17): the reverse of nothing the
// fused ranking knows. Records what it was asked.
class NumberReranker : public Reranker {
  public:
    std::string name() const override { return "numbers"; }
    std::vector<float> score(const std::string& query,
                             const std::vector<std::string>& texts) const override {
        std::lock_guard lock(mu);
        last_query = query;
        last_count = texts.size();
        std::vector<float> out;
        for (const std::string& t : texts) out.push_back(std::stof(t.substr(t.find("item ") + 5)));
        return out;
    }
    mutable std::mutex mu;
    mutable std::string last_query;
    mutable size_t last_count = 0;
};

class RerankTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cfg.data_dir = dir.path();
        store = std::make_unique<Store>(dir.path());
        indexes = std::make_unique<Indexes>(cfg, make_hashed_embedder());
        // 80 chunks mentioning "lease" to varying degrees, so the fused order is by
        // term frequency and the reranker's (by item number) differs.
        std::string text;
        std::vector<NewChunk> chunks;
        for (int i = 0; i < 80; ++i) {
            std::string p = "item " + std::to_string(i) + " ";
            for (int r = 0; r < 1 + (i * 7) % 5; ++r) p += "lease ";
            p += "terms and conditions number " + std::to_string(i);
            if (!text.empty()) text += "\n\n";
            NewChunk c;
            c.page_start = c.page_end = 1;
            c.start = int64_t(text.size());
            text += p;
            c.end = int64_t(text.size());
            c.text = p;
            chunks.push_back(c);
        }
        DocumentRow d;
        d.hash = "h";
        d.path = "/docs/items.txt";
        d.name = "items.txt";
        d.kind = "text";
        d.bytes = d.text_bytes = int64_t(text.size());
        int64_t id;
        store->put_document(d, {text}, chunks, &id);
        indexes->sync(*store);
    }
    int item_of(const Hit& h) { return std::stoi(h.chunk.text.substr(5)); }

    test::TempDir dir;
    Config cfg;
    std::unique_ptr<Store> store;
    std::unique_ptr<Indexes> indexes;
};

TEST_F(RerankTest, OrderFollowsTheRerankerAndBothScoresAreKept) {
    SearchRequest req;
    req.query = "lease terms";
    req.k = 5;
    std::vector<Hit> fused = search(*indexes, *store, req, cfg);
    ASSERT_EQ(fused.size(), 5u);
    for (const Hit& h : fused) EXPECT_FALSE(h.reranked);

    NumberReranker rr;
    cfg.rerank_top_n = 20;
    std::vector<Hit> hits = search(*indexes, *store, req, cfg, &rr);
    ASSERT_EQ(hits.size(), 5u);
    EXPECT_EQ(rr.last_count, 20u);  // top-N respected
    EXPECT_EQ(rr.last_query, "lease terms");
    // The fused top 20, without reranking: the reranked 5 are its 5 highest items.
    req.k = 20;
    std::vector<Hit> top20 = search(*indexes, *store, req, cfg);
    std::vector<int> items;
    for (const Hit& h : top20) items.push_back(item_of(h));
    std::sort(items.rbegin(), items.rend());
    for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_TRUE(hits[i].reranked);
        EXPECT_EQ(item_of(hits[i]), items[i]);
        EXPECT_DOUBLE_EQ(hits[i].rerank_score, items[i]);
        if (i) {
            EXPECT_GE(hits[i - 1].rerank_score, hits[i].rerank_score);
        }
        // score is still the fused one, fused_rank its place in the fused list.
        ASSERT_GE(hits[i].fused_rank, 1);
        ASSERT_LE(hits[i].fused_rank, 20);
        const Hit& same = top20[size_t(hits[i].fused_rank - 1)];
        EXPECT_EQ(same.chunk.id, hits[i].chunk.id);
        EXPECT_DOUBLE_EQ(same.score, hits[i].score);
    }
}

TEST_F(RerankTest, TopNBelowKStillReturnsK) {
    NumberReranker rr;
    cfg.rerank_top_n = 3;
    SearchRequest req;
    req.query = "lease";
    req.k = 10;
    std::vector<Hit> hits = search(*indexes, *store, req, cfg, &rr);
    EXPECT_EQ(hits.size(), 10u);
    EXPECT_EQ(rr.last_count, 10u);
    // Fewer candidates than N: all of them.
    cfg.rerank_top_n = 500;
    req.mode = SearchMode::Keyword;
    hits = search(*indexes, *store, req, cfg, &rr);
    EXPECT_EQ(rr.last_count, 80u);
    EXPECT_EQ(item_of(hits[0]), 79);
}

TEST_F(RerankTest, NoHitsNoRerankCall) {
    NumberReranker rr;
    SearchRequest req;
    req.query = "zebra";
    req.mode = SearchMode::Keyword;
    EXPECT_TRUE(search(*indexes, *store, req, cfg, &rr).empty());
    EXPECT_EQ(rr.last_count, 0u);
}

// A random-weight cross-encoder: its scores are meaningless, but search() must order by
// them and report exactly what Encoder::rerank gives.
TEST_F(RerankTest, GgufCrossEncoder) {
    test::BertSpec spec;
    spec.n_embd = 32;
    spec.n_ff = 64;
    spec.n_ctx = 128;
    spec.cls_head = true;
    spec.pooling = 4;
    std::string path = dir / "reranker.gguf";
    test::write_bert_model(path, spec);
    std::unique_ptr<Reranker> rr = make_gguf_reranker(path, 1);
    EXPECT_EQ(rr->name(), "gguf:ragd-test-bert");
    cfg.rerank_top_n = 12;
    SearchRequest req;
    req.query = "lease terms";
    req.k = 4;
    std::vector<Hit> hits = search(*indexes, *store, req, cfg, rr.get());
    ASSERT_EQ(hits.size(), 4u);
    auto model = BertModel::load(path);
    Encoder enc(*model, 1);
    req.k = 12;
    std::vector<Hit> top = search(*indexes, *store, req, cfg);
    std::vector<std::string> texts;
    for (const Hit& h : top) texts.push_back(h.chunk.text);
    std::vector<float> want = enc.rerank("lease terms", texts);
    std::vector<float> sorted = want;
    std::sort(sorted.rbegin(), sorted.rend());
    for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_NEAR(hits[i].rerank_score, sorted[i], 1e-4);
        EXPECT_NEAR(want[size_t(hits[i].fused_rank - 1)], hits[i].rerank_score, 1e-4);
    }

    // An embedding model is not a reranker (and the other way round): clear errors.
    spec.cls_head = false;
    spec.pooling = 2;
    test::write_bert_model(dir / "embed.gguf", spec);
    try {
        make_gguf_reranker(dir / "embed.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("classification head"), std::string::npos);
    }
    EXPECT_THROW(make_gguf_reranker(dir / "none.gguf"), Error);
}

}  // namespace
}  // namespace ragd
