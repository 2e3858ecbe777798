// GgufEmbedder (index/gguf_embedder.h) on random-weight bert models from the tests' GGUF
// writer, and the data directory's record of the model (choose_embedder).
#include "index/gguf_embedder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "index/internal.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

std::string write_model(const test::TempDir& dir, const std::string& file, uint64_t seed = 1,
                        bool reranker = false) {
    test::BertSpec spec;
    spec.n_embd = 32;
    spec.n_ff = 64;
    spec.n_ctx = 128;
    spec.seed = seed;
    spec.cls_head = reranker;
    if (reranker) spec.pooling = 4;
    std::string path = dir / file;
    test::write_bert_model(path, spec);
    return path;
}

TEST(GgufEmbedder, NameDimAndNormalizedDeterministicVectors) {
    test::TempDir dir;
    std::string path = write_model(dir, "e.gguf");
    auto e = GgufEmbedder::load(path, 1);
    EXPECT_EQ(e->dim(), 32);
    EXPECT_EQ(e->source(), path);
    EXPECT_EQ(e->model_name(), "ragd-test-bert");
    // gguf:<general.name>:<fingerprint>:<dim>:<pooling>
    EXPECT_EQ(e->name().rfind("gguf:ragd-test-bert:", 0), 0u) << e->name();
    EXPECT_EQ(e->name().substr(e->name().size() - 7), ":32:cls") << e->name();

    std::vector<std::string> texts = {"the license grants you the right", "hello world",
                                      "the license grants you the right"};
    std::vector<float> v(texts.size() * 32);
    int64_t tokens = 0;
    e->embed_counted(texts, v.data(), &tokens);
    EXPECT_GT(tokens, 6);
    for (size_t t = 0; t < texts.size(); ++t) {
        double ss = 0;
        for (int d = 0; d < 32; ++d) ss += double(v[t * 32 + d]) * v[t * 32 + d];
        EXPECT_NEAR(ss, 1.0, 1e-4);
    }
    for (int d = 0; d < 32; ++d) EXPECT_FLOAT_EQ(v[d], v[64 + d]);
    // Batched or alone, the same vector.
    std::vector<float> one(32);
    e->embed({texts[1]}, one.data());
    for (int d = 0; d < 32; ++d) EXPECT_NEAR(one[d], v[32 + d], 1e-5);
}

TEST(GgufEmbedder, FingerprintSeparatesWeights) {
    test::TempDir dir;
    auto a = GgufEmbedder::load(write_model(dir, "a.gguf", 1));
    auto a2 = GgufEmbedder::load(write_model(dir, "a2.gguf", 1));
    auto b = GgufEmbedder::load(write_model(dir, "b.gguf", 2));
    EXPECT_EQ(a->name(), a2->name());  // same bytes, another path: the same embedder
    EXPECT_NE(a->name(), b->name());   // same shapes and name, other weights
}

TEST(GgufEmbedder, ConcurrentCallersGetTheSameVectors) {
    test::TempDir dir;
    std::shared_ptr<const Embedder> e = make_gguf_embedder(write_model(dir, "e.gguf"), 1);
    std::vector<float> want(32);
    e->embed({"search the contract data"}, want.data());
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i) {
                std::vector<float> got(32);
                e->embed({"search the contract data"}, got.data());
                if (got != want) ++bad;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST(GgufEmbedder, ClearErrors) {
    test::TempDir dir;
    auto message = [](const std::function<void()>& f) {
        try {
            f();
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    std::string m = message([&] { make_gguf_embedder(dir / "none.gguf"); });
    EXPECT_NE(m.find("none.gguf: no such file"), std::string::npos) << m;
    test::write_file(dir / "junk.gguf", std::string(100, 'x'));
    m = message([&] { make_gguf_embedder(dir / "junk.gguf"); });
    EXPECT_NE(m.find("junk.gguf"), std::string::npos) << m;
    std::string r = write_model(dir, "r.gguf", 3, /*reranker=*/true);
    m = message([&] { make_gguf_embedder(r); });
    EXPECT_NE(m.find("reranker"), std::string::npos) << m;
    for (const std::string& s : {m}) EXPECT_EQ(s.find('\n'), std::string::npos);
}

// Indexes built with a model; the data directory records it, so a later open with no
// embed_model set gets the same embedder; switching back to the built-in keeps serving
// the model's vectors until the re-embed swaps them.
TEST(GgufEmbedder, IndexesRecordAndSwitchBack) {
    test::TempDir dir;
    std::string model = write_model(dir, "e.gguf");
    std::string data = dir / "data";
    Config cfg;
    cfg.data_dir = data;
    Store store(data);
    std::string text;
    std::vector<NewChunk> chunks;
    for (int i = 0; i < 12; ++i) {
        std::string p = "paragraph " + std::to_string(i) + " on the search of contract data";
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
    d.path = "/x.txt";
    d.name = "x.txt";
    d.kind = "text";
    d.bytes = d.text_bytes = int64_t(text.size());
    int64_t id;
    store.put_document(d, {text}, chunks, &id);

    cfg.embed_model = model;
    std::string name;
    {
        EmbedderChoice ch = choose_embedder(cfg);
        name = ch.target->name();
        Indexes ix(cfg, ch.target, ch.resolver);
        ix.sync(store);
        EXPECT_EQ(ix.vectors(), 12);
        EXPECT_EQ(ix.serving_embedder(), name);
        auto hits = ix.vector_search(chunks[3].text, 1, {}, store);
        ASSERT_EQ(hits.size(), 1u);
        EXPECT_NEAR(hits[0].score, 1.0, 1e-4);
    }
    std::ifstream rec(data + "/embedders.json");
    ASSERT_TRUE(rec.good());
    cfg.embed_model = "";  // the record says which
    EXPECT_EQ(choose_embedder(cfg).target->name(), name);

    cfg.embed_model = "builtin";
    EmbedderChoice ch = choose_embedder(cfg);
    auto ix = std::make_unique<Indexes>(cfg, ch.target, ch.resolver);
    ix->set_background_reembed(true);
    EXPECT_TRUE(ix->needs_reembed());
    EXPECT_EQ(ix->serving_embedder(), name);  // loaded again from the record
    EXPECT_EQ(ix->vector_search(chunks[5].text, 1, {}, store).at(0).chunk_id,
              ix->keyword_search("paragraph 5", 1, {}, store).at(0).chunk_id);
    Store own(data);
    ASSERT_TRUE(ix->reembed(own));
    EXPECT_EQ(ix->serving_embedder(), "hashed-ngram-v2");
    ix.reset();
    cfg.embed_model = "";
    EXPECT_EQ(choose_embedder(cfg).target->name(), "hashed-ngram-v2");

    // A recorded current model whose file is gone is a clear error.
    cfg.embed_model = model;
    {
        EmbedderChoice c2 = choose_embedder(cfg);
        Indexes again(cfg, c2.target, c2.resolver);
        again.sync(store);
    }
    std::filesystem::remove(model);
    cfg.embed_model = "";
    try {
        choose_embedder(cfg);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--embed-model"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace ragd
