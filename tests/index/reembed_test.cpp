// Embedder switches (Indexes::reembed, index.h): the old vectors keep serving, the new
// index is built beside them and swapped in; never a mix; a crash midway starts over.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "index/internal.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

// The built-in embedder under another name (a stand-in for a second model).
class Renamed : public Embedder {
  public:
    Renamed(std::string name, int dim)
        : name_(std::move(name)), inner_(make_hashed_embedder(dim)) {}
    std::string name() const override { return name_; }
    int dim() const override { return inner_->dim(); }
    void embed(const std::vector<std::string>& texts, float* out) const override {
        calls += int(texts.size());
        inner_->embed(texts, out);
    }
    mutable std::atomic<int> calls{0};

  private:
    std::string name_;
    std::unique_ptr<Embedder> inner_;
};

int64_t put_doc(Store& store, const std::string& path, int n) {
    std::string text;
    std::vector<NewChunk> chunks;
    for (int i = 0; i < n; ++i) {
        std::string p = "Paragraph " + std::to_string(i) + " of " + path +
                        " about lease termination and battery care marker" +
                        std::to_string(std::hash<std::string>()(path) % 100000) + "x" +
                        std::to_string(i);
        if (!text.empty()) text += "\n\n";
        NewChunk c;
        c.page_start = c.page_end = 1;
        c.start = int64_t(text.size());
        text += p;
        c.end = int64_t(text.size());
        c.text = p;
        c.n_tokens = approx_tokens(p);
        chunks.push_back(c);
    }
    DocumentRow d;
    d.hash = sha256_hex(path + text);
    d.path = path;
    d.name = std::filesystem::path(path).filename();
    d.kind = "text";
    d.bytes = int64_t(text.size());
    d.text_bytes = int64_t(text.size());
    int64_t id = 0;
    store.put_document(d, {text}, chunks, &id);
    return id;
}

class ReembedTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cfg.data_dir = dir.path();
        store = std::make_unique<Store>(dir.path());
        a = std::make_shared<Renamed>("model-a", 64);
        b = std::make_shared<Renamed>("model-b", 96);
    }
    // Knows A and B (as a data directory's record would).
    EmbedderResolver resolver() {
        auto ea = a, eb = b;
        return [ea, eb](const std::string& name, int dim) -> std::shared_ptr<const Embedder> {
            if (name == ea->name() && dim == ea->dim()) return ea;
            if (name == eb->name() && dim == eb->dim()) return eb;
            return nullptr;
        };
    }
    std::string file_embedder() {
        std::string name;
        int dim = 0;
        EXPECT_TRUE(read_vector_header(dir / "vectors.faiss", &name, &dim));
        return name + "/" + std::to_string(dim);
    }
    // The store, Xapian and FAISS agree; every chunk is its own nearest neighbour.
    void expect_converged(Indexes& ix) {
        std::set<int64_t> live;
        store->for_each_chunk([&](const ChunkRow& c) { live.insert(c.id); });
        EXPECT_EQ(ix.keyword_docs(), int64_t(live.size()));
        EXPECT_EQ(ix.vectors(), int64_t(live.size()));
        store->for_each_chunk([&](const ChunkRow& c) {
            auto vh = ix.vector_search(c.text, 1, {}, *store);
            ASSERT_EQ(vh.size(), 1u);
            EXPECT_EQ(vh[0].chunk_id, c.id);
        });
        for (const auto& h : ix.vector_search("lease termination", 1000, {}, *store))
            EXPECT_TRUE(live.count(h.chunk_id)) << h.chunk_id;
    }

    test::TempDir dir;
    Config cfg;
    std::unique_ptr<Store> store;
    std::shared_ptr<Renamed> a, b;
};

TEST_F(ReembedTest, OldVectorsServeUntilTheSwap) {
    put_doc(*store, "/d/one.txt", 6);
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    EXPECT_EQ(file_embedder(), "model-a/64");

    Indexes ix(cfg, b, resolver());
    ix.set_background_reembed(true);
    EXPECT_TRUE(ix.needs_reembed());
    EXPECT_EQ(ix.serving_embedder(), "model-a");
    EXPECT_EQ(ix.embedder().name(), "model-b");
    EXPECT_EQ(ix.vectors(), 6);
    EXPECT_EQ(ix.vector_note(), "");
    // Background mode: sync keeps the old index current with the old embedder.
    put_doc(*store, "/d/two.txt", 3);
    int b_before = b->calls;
    ix.sync(*store);
    EXPECT_EQ(b->calls, b_before) << "sync must not embed with the new model";
    EXPECT_EQ(ix.vectors(), 9);
    EXPECT_EQ(file_embedder(), "model-a/64");
    expect_converged(ix);

    std::vector<std::pair<int64_t, int64_t>> progress;
    Store own(dir.path());
    ASSERT_TRUE(ix.reembed(own, [&](int64_t d, int64_t t) { progress.push_back({d, t}); }));
    EXPECT_FALSE(ix.needs_reembed());
    EXPECT_EQ(ix.serving_embedder(), "model-b");
    EXPECT_EQ(file_embedder(), "model-b/96");
    EXPECT_FALSE(std::filesystem::exists(dir / "vectors.faiss.next"));
    ASSERT_FALSE(progress.empty());
    EXPECT_EQ(progress.front(), std::make_pair(int64_t(0), int64_t(9)));
    EXPECT_EQ(progress.back(), std::make_pair(int64_t(9), int64_t(9)));
    expect_converged(ix);
    // Later ops go to the new index with the new embedder, and it reloads as B's.
    put_doc(*store, "/d/three.txt", 2);
    ix.sync(*store);
    expect_converged(ix);
    Indexes again(cfg, b, resolver());
    EXPECT_FALSE(again.needs_reembed());
    EXPECT_EQ(again.vectors(), 11);
}

// Store writes, removals and syncs (which prune the outbox) while the bulk is embedded:
// the new index still ends equal to the store.
TEST_F(ReembedTest, ConcurrentChangesDuringReembedConverge) {
    std::vector<int64_t> docs;
    for (int d = 0; d < 6; ++d) docs.push_back(put_doc(*store, "/d/" + std::to_string(d), 100));
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    Indexes ix(cfg, b, resolver());
    ix.set_background_reembed(true);
    Store writer(dir.path());
    int calls = 0;
    Store own(dir.path());
    bool ok = ix.reembed(own, [&](int64_t, int64_t) {
        // Between batches: change the store and let sync apply and prune.
        ++calls;
        if (calls == 2) {
            writer.remove_document(docs[0]);
            put_doc(writer, "/d/new-a", 5);
            ix.sync(writer);
        }
        if (calls == 3) {
            writer.remove_document(docs[5]);  // not yet scanned
            put_doc(writer, "/d/new-b", 5);
            ix.sync(writer);
        }
    });
    ASSERT_TRUE(ok);
    ix.sync(*store);
    EXPECT_EQ(ix.serving_embedder(), "model-b");
    EXPECT_EQ(store->counts().chunks, 410);
    expect_converged(ix);
}

TEST_F(ReembedTest, StoppedReembedChangesNothing) {
    put_doc(*store, "/d/one.txt", 300);
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    Indexes ix(cfg, b, resolver());
    ix.set_background_reembed(true);
    std::atomic<bool> stop{false};
    Store own(dir.path());
    EXPECT_FALSE(ix.reembed(
        own, [&](int64_t d, int64_t) { stop = d > 0; }, &stop));
    EXPECT_TRUE(ix.needs_reembed());
    EXPECT_EQ(ix.serving_embedder(), "model-a");
    EXPECT_EQ(file_embedder(), "model-a/64");
    EXPECT_EQ(ix.vectors(), 300);
}

// A crash mid-re-embed leaves the temp file behind: the next open drops it and serves
// the old vectors; the re-embed starts over.
TEST_F(ReembedTest, CrashLeftoversAreDropped) {
    put_doc(*store, "/d/one.txt", 5);
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    test::write_file(dir / "vectors.faiss.next", "half a file");
    test::write_file(dir / "vectors.faiss.next.tmp", "half a file");
    Indexes ix(cfg, b, resolver());
    ix.set_background_reembed(true);
    EXPECT_FALSE(std::filesystem::exists(dir / "vectors.faiss.next"));
    EXPECT_FALSE(std::filesystem::exists(dir / "vectors.faiss.next.tmp"));
    EXPECT_EQ(ix.serving_embedder(), "model-a");
    Store own(dir.path());
    ASSERT_TRUE(ix.reembed(own));
    expect_converged(ix);
}

// The old embedder cannot be had: vector search is off (with a note) until the swap.
TEST_F(ReembedTest, UnknownOldEmbedderMeansKeywordOnlyUntilSwap) {
    put_doc(*store, "/d/one.txt", 5);
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    Indexes ix(cfg, b);  // no resolver
    ix.set_background_reembed(true);
    ix.sync(*store);
    EXPECT_TRUE(ix.needs_reembed());
    EXPECT_EQ(ix.serving_embedder(), "");
    EXPECT_NE(ix.vector_note().find("model-a"), std::string::npos) << ix.vector_note();
    EXPECT_EQ(ix.vectors(), 0);
    EXPECT_TRUE(ix.vector_search("lease", 5, {}, *store).empty());
    EXPECT_EQ(ix.keyword_search("lease", 10, {}, *store).size(), 5u);
    EXPECT_EQ(file_embedder(), "model-a/64");  // kept until replaced
    Store own(dir.path());
    ASSERT_TRUE(ix.reembed(own));
    EXPECT_EQ(ix.vector_note(), "");
    expect_converged(ix);
}

// Without background mode (CLI writers), sync re-embeds at once.
TEST_F(ReembedTest, ForegroundSyncReembeds) {
    put_doc(*store, "/d/one.txt", 5);
    {
        Indexes ix(cfg, a);
        ix.sync(*store);
    }
    Indexes ix(cfg, b, resolver());
    ix.sync(*store);
    EXPECT_FALSE(ix.needs_reembed());
    EXPECT_EQ(file_embedder(), "model-b/96");
    EXPECT_GT(ix.embed_seconds(), 0.0);
    expect_converged(ix);
}

TEST_F(ReembedTest, ChooseEmbedderBuiltinAndErrors) {
    Config c = cfg;
    c.embed_model = "builtin";
    EmbedderChoice ch = choose_embedder(c);
    EXPECT_EQ(ch.target->name(), "hashed-ngram-v2");
    EXPECT_EQ(ch.resolver("hashed-ngram-v2", 384)->name(), "hashed-ngram-v2");
    EXPECT_EQ(ch.resolver("gguf:x:0:8:cls", 8), nullptr);
    c.embed_model = "";
    EXPECT_EQ(choose_embedder(c).target->name(), "hashed-ngram-v2");
    c.embed_model = dir / "missing.gguf";
    try {
        choose_embedder(c);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::NotFound);
        EXPECT_NE(std::string(e.what()).find("missing.gguf"), std::string::npos);
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
    test::write_file(dir / "junk.gguf", "not a gguf file at all");
    c.embed_model = dir / "junk.gguf";
    EXPECT_THROW(choose_embedder(c), Error);
}

}  // namespace
}  // namespace ragd
