// Indexes::sync / rebuild against a real Store: crash states converge.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "index/internal.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

// One page of paragraphs; one chunk per paragraph.
int64_t put_doc(Store& store, const std::string& path, const std::string& collection,
                const std::vector<std::string>& paras) {
    std::string text;
    std::vector<NewChunk> chunks;
    for (const auto& p : paras) {
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
    d.hash = sha256_hex(path + "\0" + text);
    d.path = path;
    d.name = std::filesystem::path(path).filename();
    d.collection = collection;
    d.kind = "text";
    d.bytes = int64_t(text.size());
    d.n_pages = 1;
    d.text_bytes = int64_t(text.size());
    int64_t id = 0;
    store.put_document(d, {text}, chunks, &id);
    return id;
}

const char* kTopics[] = {"lease termination notice",      "rent payment schedule",
                         "battery replacement procedure", "insurance liability clause",
                         "software license agreement",    "medical dosage instructions"};

std::vector<std::string> paras_for(int doc, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        out.push_back("Document " + std::to_string(doc) + " paragraph " + std::to_string(i) +
                      " about " + kTopics[(doc + i) % 6] + " marker" + std::to_string(doc) + "x" +
                      std::to_string(i));
    }
    return out;
}

class SyncTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cfg.data_dir = dir.path();
        store = std::make_unique<Store>(dir.path());
        embedder = make_hashed_embedder();
    }
    std::unique_ptr<Indexes> open() { return std::make_unique<Indexes>(cfg, embedder); }

    // Every index agrees with the store, and searches only return live chunks.
    void expect_converged(Indexes& ix) {
        std::set<int64_t> live;
        store->for_each_chunk([&](const ChunkRow& c) { live.insert(c.id); });
        int64_t n = int64_t(live.size());
        EXPECT_EQ(store->counts().chunks, n);
        EXPECT_EQ(ix.keyword_docs(), n);
        EXPECT_EQ(ix.vectors(), n);
        for (const char* q : {"lease termination", "battery", "paragraph", "document"}) {
            for (const auto& h : ix.keyword_search(q, 1000, {}, *store)) {
                EXPECT_TRUE(live.count(h.chunk_id)) << q << " " << h.chunk_id;
            }
            auto vh = ix.vector_search(q, 1000, {}, *store);
            EXPECT_EQ(int64_t(vh.size()), n) << q;
            for (const auto& h : vh) EXPECT_TRUE(live.count(h.chunk_id)) << q << " " << h.chunk_id;
        }
        // Every live chunk is findable by its unique marker word in both indexes.
        store->for_each_chunk([&](const ChunkRow& c) {
            std::string marker = c.text.substr(c.text.rfind("marker"));
            auto kh = ix.keyword_search(marker, 1, {}, *store);
            ASSERT_EQ(kh.size(), 1u) << marker;
            EXPECT_EQ(kh[0].chunk_id, c.id);
            auto vh = ix.vector_search(c.text, 1, {}, *store);
            ASSERT_EQ(vh.size(), 1u);
            EXPECT_EQ(vh[0].chunk_id, c.id);
        });
    }

    test::TempDir dir;
    Config cfg;
    std::unique_ptr<Store> store;
    std::shared_ptr<const Embedder> embedder;
};

TEST_F(SyncTest, EmptyStore) {
    auto ix = open();
    EXPECT_EQ(ix->sync(*store), 0);
    EXPECT_EQ(ix->keyword_docs(), 0);
    EXPECT_EQ(ix->vectors(), 0);
    EXPECT_TRUE(ix->keyword_search("anything", 10, {}, *store).empty());
    EXPECT_TRUE(ix->vector_search("anything", 10, {}, *store).empty());
    EXPECT_TRUE(std::filesystem::exists(dir / "vectors.faiss"));
    EXPECT_EQ(ix->sync(*store), 0);
}

TEST_F(SyncTest, IncrementalAddsRemovesAndPrunes) {
    auto ix = open();
    ix->sync(*store);
    int64_t a = put_doc(*store, "/docs/a.txt", "legal", paras_for(1, 5));
    put_doc(*store, "/docs/b.txt", "manuals", paras_for(2, 4));
    EXPECT_EQ(ix->sync(*store), 9);
    expect_converged(*ix);
    EXPECT_EQ(store->ops_after(0, 100).size(), 0u);  // pruned
    EXPECT_EQ(store->ops_pruned_upto(), store->last_op_seq());

    // Replace a document (its chunks get new ids), delete another.
    put_doc(*store, "/docs/a.txt", "legal", paras_for(3, 2));
    EXPECT_EQ(ix->sync(*store), 7);  // 5 removes + 2 adds
    expect_converged(*ix);
    EXPECT_TRUE(store->remove_document(a));
    ix->sync(*store);
    expect_converged(*ix);
    EXPECT_EQ(ix->keyword_docs(), 4);
    EXPECT_EQ(ix->sync(*store), 0);  // idempotent
}

TEST_F(SyncTest, AddThenRemoveBeforeSync) {
    auto ix = open();
    ix->sync(*store);
    int64_t a = put_doc(*store, "/docs/a.txt", "", paras_for(1, 3));
    put_doc(*store, "/docs/b.txt", "", paras_for(2, 3));
    store->remove_document(a);  // Add ops whose chunks no longer exist
    EXPECT_EQ(ix->sync(*store), 9);
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), 3);
}

TEST_F(SyncTest, Filters) {
    auto ix = open();
    int64_t a = put_doc(*store, "/docs/a.txt", "legal", paras_for(1, 4));
    int64_t b = put_doc(*store, "/docs/b.txt", "manuals", paras_for(2, 4));
    put_doc(*store, "/docs/c.txt", "manuals", paras_for(3, 4));
    ix->sync(*store);
    auto in = [&](const std::vector<int64_t>& ids, int64_t chunk) {
        return std::count(ids.begin(), ids.end(), chunk) > 0;
    };
    std::vector<int64_t> legal = store->chunk_ids("legal", 0);
    std::vector<int64_t> doc_b = store->chunk_ids("", b);
    for (const auto& h : ix->vector_search("paragraph", 100, {"legal", 0}, *store)) {
        EXPECT_TRUE(in(legal, h.chunk_id));
    }
    EXPECT_EQ(ix->vector_search("paragraph", 100, {"legal", 0}, *store).size(), 4u);
    EXPECT_EQ(ix->keyword_search("paragraph", 100, {"legal", 0}, *store).size(), 4u);
    EXPECT_EQ(ix->vector_search("paragraph", 100, {"", b}, *store).size(), 4u);
    for (const auto& h : ix->keyword_search("paragraph", 100, {"", b}, *store)) {
        EXPECT_TRUE(in(doc_b, h.chunk_id));
    }
    EXPECT_EQ(ix->keyword_search("paragraph", 100, {"manuals", 0}, *store).size(), 8u);
    EXPECT_TRUE(ix->vector_search("paragraph", 100, {"manuals", a}, *store).empty());
    EXPECT_TRUE(ix->keyword_search("paragraph", 100, {"manuals", a}, *store).empty());
    EXPECT_TRUE(ix->vector_search("paragraph", 100, {"nosuch", 0}, *store).empty());
    EXPECT_TRUE(ix->vector_search("!!!", 100, {}, *store).empty());
    EXPECT_THROW(ix->keyword_search("paragraph AND", 10, {}, *store), Error);
}

// The process died after the store committed but before the indexes did.
TEST_F(SyncTest, IndexBehindTheStore) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 5));
        ix->sync(*store);
    }
    put_doc(*store, "/docs/b.txt", "", paras_for(2, 5));
    int64_t c = put_doc(*store, "/docs/c.txt", "", paras_for(3, 5));
    store->remove_document(c);
    auto ix = open();
    EXPECT_EQ(ix->keyword_docs(), 5);
    ix->sync(*store);
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), 10);
}

// Crash between the Xapian commit and the FAISS save: the indexes are at different seqs.
TEST_F(SyncTest, IndexesAtDifferentSeqs) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 3));
        ix->sync(*store);
    }
    std::string saved = test::read_file(dir / "vectors.faiss");
    put_doc(*store, "/docs/b.txt", "", paras_for(2, 3));
    {
        auto ix = open();
        ix->sync(*store);
    }
    // FAISS goes back in time; its ops were pruned, so it must rebuild, and keyword
    // keeps its state.
    test::write_file(dir / "vectors.faiss", saved);
    auto ix = open();
    EXPECT_EQ(ix->vectors(), 3);
    ix->sync(*store);
    expect_converged(*ix);
}

// Crash between the two index commits, ops not yet pruned: each index replays only what
// it lacks.
TEST_F(SyncTest, OneIndexAheadOfTheOther) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 3));
        ix->sync(*store);
    }
    // Keyword alone applies document b.
    int64_t b = put_doc(*store, "/docs/b.txt", "", paras_for(2, 3));
    {
        KeywordIndex kw(dir / "xapian");
        std::vector<KeywordDoc> docs;
        for (const auto& c : store->chunks_of_document(b)) {
            docs.push_back({c.id, c.document_id, c.collection, c.text});
        }
        kw.put(docs);
        kw.commit(store->last_op_seq());
    }
    // Vector alone applies document c.
    int64_t c = put_doc(*store, "/docs/c.txt", "", paras_for(3, 3));
    {
        VectorIndex vi(dir / "vectors.faiss", embedder->name(), embedder->dim(), 64);
        ASSERT_TRUE(vi.load());
        auto all = store->chunks_of_document(b);
        for (const auto& ch : store->chunks_of_document(c)) all.push_back(ch);
        std::vector<std::string> texts;
        std::vector<int64_t> ids;
        for (const auto& ch : all) {
            texts.push_back(ch.text);
            ids.push_back(ch.id);
        }
        std::vector<float> v(texts.size() * size_t(embedder->dim()));
        embedder->embed(texts, v.data());
        vi.add(int64_t(ids.size()), ids.data(), v.data());
        vi.set_applied_seq(store->last_op_seq());
        vi.save();
    }
    EXPECT_GT(store->ops_after(0, 100).size(), 0u);
    auto ix = open();
    EXPECT_EQ(ix->keyword_docs(), 6);
    EXPECT_EQ(ix->vectors(), 9);
    ix->sync(*store);
    expect_converged(*ix);
    EXPECT_EQ(ix->keyword_docs(), 9);
}

TEST_F(SyncTest, VectorFileDeleted) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 6));
        ix->sync(*store);
    }
    std::filesystem::remove(dir / "vectors.faiss");
    auto ix = open();
    EXPECT_EQ(ix->vectors(), 0);
    ix->sync(*store);
    expect_converged(*ix);
}

TEST_F(SyncTest, VectorFileCorrupt) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 6));
        ix->sync(*store);
    }
    std::string bytes = test::read_file(dir / "vectors.faiss");
    test::write_file(dir / "vectors.faiss", bytes.substr(0, bytes.size() / 2));
    auto ix = open();
    ix->sync(*store);
    expect_converged(*ix);
}

TEST_F(SyncTest, KeywordIndexDeletedOrCorrupt) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 6));
        ix->sync(*store);
    }
    std::filesystem::remove_all(dir / "xapian");
    {
        auto ix = open();
        ix->sync(*store);
        expect_converged(*ix);
    }
    for (const auto& f : std::filesystem::directory_iterator(dir / "xapian")) {
        test::write_file(f.path().string(), "not xapian");
    }
    auto ix = open();
    ix->sync(*store);
    expect_converged(*ix);
}

// The ops an index needed were pruned (e.g. it was restored from an old backup): rebuild.
TEST_F(SyncTest, OpsPrunedPastTheIndex) {
    std::string old_vec;
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 4));
        ix->sync(*store);
        old_vec = test::read_file(dir / "vectors.faiss");
    }
    int64_t b = put_doc(*store, "/docs/b.txt", "", paras_for(2, 4));
    put_doc(*store, "/docs/c.txt", "", paras_for(3, 4));
    store->remove_document(b);
    store->prune_ops(store->last_op_seq());  // as if another index set had applied them
    test::write_file(dir / "vectors.faiss", old_vec);
    auto ix = open();
    ix->sync(*store);
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), 8);
}

// The database was replaced by a fresh one: indexes claim seqs the store never had.
TEST_F(SyncTest, IndexAheadOfTheStore) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 6));
        put_doc(*store, "/docs/b.txt", "", paras_for(2, 6));
        ix->sync(*store);
    }
    store.reset();
    for (const char* f : {"ragd.db", "ragd.db-wal", "ragd.db-shm"}) {
        std::filesystem::remove(dir / f);
    }
    store = std::make_unique<Store>(dir.path());
    put_doc(*store, "/docs/z.txt", "", paras_for(9, 2));
    auto ix = open();
    ix->sync(*store);
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), 2);
}

// A different embedder (name or dimension) makes the vector index rebuild.
TEST_F(SyncTest, EmbedderChangeRebuildsVectors) {
    {
        auto ix = open();
        put_doc(*store, "/docs/a.txt", "", paras_for(1, 4));
        ix->sync(*store);
    }
    embedder = make_hashed_embedder(128);
    auto ix = open();
    EXPECT_EQ(ix->vectors(), 0);
    ix->sync(*store);
    expect_converged(*ix);
}

TEST_F(SyncTest, RebuildMatchesSync) {
    auto ix = open();
    for (int d = 0; d < 5; ++d) {
        put_doc(*store, "/docs/" + std::to_string(d) + ".txt", d % 2 ? "odd" : "even",
                paras_for(d, 7));
    }
    ix->sync(*store);
    auto before_k = ix->keyword_search("lease termination", 10, {}, *store);
    auto before_v = ix->vector_search("lease termination", 10, {}, *store);
    ix->rebuild(*store);
    expect_converged(*ix);
    auto after_k = ix->keyword_search("lease termination", 10, {}, *store);
    auto after_v = ix->vector_search("lease termination", 10, {}, *store);
    ASSERT_EQ(before_k.size(), after_k.size());
    for (size_t i = 0; i < before_k.size(); ++i) {
        EXPECT_EQ(before_k[i].chunk_id, after_k[i].chunk_id);
    }
    ASSERT_EQ(before_v.size(), after_v.size());
    for (size_t i = 0; i < before_v.size(); ++i) {
        EXPECT_NEAR(before_v[i].score, after_v[i].score, 1e-5);
    }
    EXPECT_EQ(store->ops_after(0, 10).size(), 0u);
}

// Many ops (more than one replay batch) and many removes: the replay pages through the
// outbox and compaction keeps the vector index consistent.
TEST_F(SyncTest, LargeBacklogWithChurn) {
    auto ix = open();
    ix->sync(*store);
    std::vector<int64_t> docs;
    for (int d = 0; d < 60; ++d) {
        docs.push_back(
            put_doc(*store, "/docs/" + std::to_string(d) + ".txt", "", paras_for(d, 20)));
    }
    for (int d = 0; d < 60; d += 2) store->remove_document(docs[size_t(d)]);
    EXPECT_EQ(ix->sync(*store), 60 * 20 + 30 * 20);
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), 30 * 20);

    for (int d = 1; d < 60; d += 2) {
        if (d % 3 != 0) store->remove_document(docs[size_t(d)]);
    }
    ix->sync(*store);
    expect_converged(*ix);
    // Reopen from disk: same state.
    ix.reset();
    ix = open();
    EXPECT_EQ(ix->sync(*store), 0);
    expect_converged(*ix);
}

// Store writers and searchers run while sync() replays: idempotent replay converges once
// the writers stop.
TEST_F(SyncTest, ConcurrentWritersAndSearchers) {
    auto ix = open();
    ix->sync(*store);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        Store w(dir.path());
        std::vector<int64_t> docs;
        for (int d = 0; d < 40; ++d) {
            docs.push_back(put_doc(w, "/docs/c" + std::to_string(d) + ".txt", "", paras_for(d, 5)));
            if (d % 3 == 2) w.remove_document(docs[size_t(d - 1)]);
        }
    });
    std::thread searcher([&] {
        Store r(dir.path());
        while (!stop) {
            ix->keyword_search("lease termination", 10, {}, r);
            ix->vector_search("battery replacement", 10, {}, r);
            ix->vector_search("battery replacement", 10, {"", 3}, r);
        }
    });
    for (int i = 0; i < 20; ++i) ix->sync(*store);
    writer.join();
    ix->sync(*store);
    stop = true;
    searcher.join();
    expect_converged(*ix);
    EXPECT_EQ(ix->vectors(), (40 - 13) * 5);
}

}  // namespace
}  // namespace ragd
