// index: the derived search indexes, rebuilt from the Store at any time.
//
//   DATA_DIR/xapian/        Xapian database: one document per chunk. Unique term "Q<chunk id>",
//                           boolean filter terms "XC<collection>" and "XD<document id>",
//                           document data = chunk id in decimal. Text indexed with the
//                           English stemmer and stop list. Metadata "applied_seq" = last
//                           index_ops seq applied, committed with the documents.
//   DATA_DIR/vectors.faiss  ragd's container around a FAISS index: magic "RAGDVEC1",
//                           applied_seq, embedder name, dimension, tombstoned ids, then the
//                           FAISS index bytes. Written to a temp file, fsynced, renamed, so
//                           it is always either the old or the new state.
//
// FAISS ids are chunk ids. Inner product over L2-normalized vectors (= cosine).
// Both indexes consume the Store's index_ops outbox (store.h) and remember how far they
// got, so after a crash Indexes::sync() converges them to SQLite; rebuild() starts over.
//
// Errors: Xapian and FAISS exceptions are caught here and rethrown as ragd::Error.
// Threads: one writer per data directory (the caller holds the directory lock); readers
// may search concurrently with each other, and with sync() on the same Indexes (each
// index locks itself; a search sees the state before or after each applied batch).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ingest/store.h"

namespace ragd {

// Text -> fixed-size L2-normalized vector. Implementations must be deterministic.
class Embedder {
  public:
    virtual ~Embedder() = default;
    virtual std::string name() const = 0;  // recorded in the vector index
    virtual int dim() const = 0;
    // out: n * dim() floats, row i the embedding of texts[i].
    virtual void embed(const std::vector<std::string>& texts, float* out) const = 0;
    // The model file behind a model-based embedder ("" for built-in ones): recorded in
    // DATA_DIR/embedders.json so later commands can load the embedder that built the index.
    virtual std::string source() const { return {}; }
};

// Finds an embedder by the name and dimension a vectors.faiss records; null if unknown.
using EmbedderResolver =
    std::function<std::shared_ptr<const Embedder>(const std::string& name, int dim)>;

// The default embedder: needs no weights. Features: lowercased word unigrams and bigrams
// (on English stems, stop words dropped), and character 3- to 5-grams of each word (with
// boundary marks), each hashed (64-bit) and scattered with pseudo-random signs into `dim`
// dimensions (a sparse signed random projection), weighted by 1 + log(tf), then
// L2-normalized. name() = "hashed-ngram-v2".
std::unique_ptr<Embedder> make_hashed_embedder(int dim = 384);

// An embedder running a BERT-family GGUF embedding model (index/gguf_embedder.h) with
// THREADS threads (0 = hardware). name() = "gguf:<general.name>:<fingerprint>:<dim>:<pooling>",
// the fingerprint hashing the file's size and sampled content, so two files differing in
// any weight block get different names. Throws Error (NotFound, Unsupported, Corrupt...)
// with a one-line message naming the file.
std::unique_ptr<Embedder> make_gguf_embedder(const std::string& path, int threads = 0);

// The embedders for a data directory, from cfg.embed_model (config.h):
//   target    the embedder new vectors come from: the GGUF file cfg.embed_model, or the
//             built-in for "builtin", or (when empty) the model recorded in
//             DATA_DIR/embedders.json as current, or the built-in when none is recorded;
//   resolver  finds the embedder that built an existing vectors.faiss among the built-in
//             (dimension 384) and every GGUF model the data directory recorded whose file
//             still exists and still has the recorded name, so a switch can keep serving
//             the old vectors while the new ones are built.
// Throws Error with a one-line message for a missing or unloadable model file (a recorded
// current model included: pass --embed-model builtin or another model to move on).
struct EmbedderChoice {
    std::shared_ptr<const Embedder> target;
    EmbedderResolver resolver;
};
EmbedderChoice choose_embedder(const Config& cfg);

// DATA_DIR/embedders.json: {"current": NAME, "models": [{"name", "path", "dim"}...]}.
// Written atomically (temp + rename) when an index build for a model-based embedder
// starts to be installed, before vectors.faiss is renamed, so the file always names every
// model whose vectors may be on disk.
void record_embedder(const std::string& data_dir, const Embedder& e);

struct KeywordHit {
    int64_t chunk_id;
    double score;  // BM25
};

struct VectorHit {
    int64_t chunk_id;
    float score;  // inner product = cosine similarity
};

// Filters shared by both indexes; empty/0 means no filter.
struct IndexFilter {
    std::string collection;
    int64_t document_id = 0;
};

// True for common English words that carry no meaning for retrieval ("the", "of", "which").
// WORD is lowercase. Shared by the keyword index, the built-in embedder and answers.
bool is_stop_word(std::string_view word);

class KeywordIndex;
class VectorIndex;
struct VectorSide;

// Both derived indexes of one data directory.
//
// Embedder switches: the vector index records the embedder (name, dimension) that built
// it. When the target embedder differs from the one recorded, the index that is there
// keeps serving searches with the embedder that built it (found through the resolver) and
// keeps following the outbox with it, while reembed() builds the target's index into
// DATA_DIR/vectors.faiss.next (a temp file: deleted on open and when a re-embed starts),
// catches it up with the outbox, and renames it over vectors.faiss under the write lock;
// searches move to the new index and embedder at that instant. Vectors of two embedders
// never share an index. If the old embedder is unknown (a model file gone), vector search
// returns nothing until the re-embed is done (hybrid = keyword only; vector_note() says
// so). A crash mid-re-embed leaves vectors.faiss as it was; the next open starts over.
class Indexes {
  public:
    // Opens (creating if missing) the indexes of cfg.data_dir for reading and writing.
    // EMBEDDER is the target; RESOLVER (optional) finds the embedder of an existing
    // vectors.faiss built by another one.
    // REQUIRES: the caller holds the data directory lock when it will write.
    Indexes(const Config& cfg, std::shared_ptr<const Embedder> embedder,
            EmbedderResolver resolver = nullptr);
    ~Indexes();
    Indexes(const Indexes&) = delete;
    Indexes& operator=(const Indexes&) = delete;

    // Applies every index op in the store newer than what each index holds, commits both,
    // then prunes ops both have applied. If an index is missing, unreadable, or older than
    // the pruned ops, it is rebuilt from the store. If the vectors were built by another
    // embedder than the target: without background re-embedding (the default) they are
    // re-embedded now (reembed()); with it, they stay in service and follow the outbox.
    // Returns the number of ops applied. Safe to call at any time; idempotent.
    int64_t sync(Store& store);
    // Drops both indexes and rebuilds them from every chunk in the store (target embedder).
    void rebuild(Store& store);

    // Background re-embedding (the server): sync() leaves a switch to reembed().
    void set_background_reembed(bool on) { background_ = on; }
    // True while the vectors searched are not the target embedder's.
    bool needs_reembed() const;
    // Builds the target embedder's vector index from the store beside the one in service
    // and swaps it in (see above). PROGRESS(done, total) is called after each batch of
    // chunks. Returns false, leaving everything as it was, when *stop becomes true.
    // STORE is used by this call only (a connection of its own); sync() may run on other
    // threads meanwhile. Returns true at once when nothing needs re-embedding.
    bool reembed(Store& store,
                 const std::function<void(int64_t done, int64_t total)>& progress = {},
                 const std::atomic<bool>* stop = nullptr);

    // Keyword search. The query uses Xapian's parser: stemming, stop words, "phrases",
    // AND/OR/NOT, +required -excluded. Throws Error::InvalidArgument on a malformed query.
    std::vector<KeywordHit> keyword_search(const std::string& query, int k,
                                           const IndexFilter& filter, Store& store);
    // Vector search with the embedder that built the vectors in service, over the same
    // text. Empty when no usable vectors are in service (see vector_note()).
    std::vector<VectorHit> vector_search(const std::string& query, int k, const IndexFilter& filter,
                                         Store& store);

    int64_t keyword_docs();  // documents in Xapian (== live chunks when in sync)
    int64_t vectors();       // live vectors in FAISS (tombstones excluded)
    // The target embedder (the one new vectors come from once any switch is done).
    const Embedder& embedder() const { return *embedder_; }
    // Name of the embedder whose vectors are searched now; "" when none are.
    std::string serving_embedder() const;
    // "" normally; else one line on why vector search is degraded (a switch in progress
    // from an embedder that cannot be loaded).
    std::string vector_note() const;
    // Wall-clock seconds spent embedding text (sync, rebuild, reembed) since opened.
    double embed_seconds() const { return double(embed_ns_.load()) * 1e-9; }

  private:
    std::shared_ptr<VectorSide> side() const;
    void set_side(std::shared_ptr<VectorSide> s);
    void embed_timed(const Embedder& e, const std::vector<std::string>& texts, float* out);
    void fill(Store& store, const Embedder& emb, KeywordIndex* kw, VectorIndex* vec);

    Config cfg_;
    std::shared_ptr<const Embedder> embedder_;
    EmbedderResolver resolver_;
    std::unique_ptr<KeywordIndex> keyword_;
    mutable std::mutex side_mu_;           // guards side_ (the pointer, not what it points to)
    std::shared_ptr<VectorSide> side_;     // null: no usable vectors in service
    std::string note_;                     // guarded by side_mu_
    std::mutex write_mu_;                  // one writer at a time: sync, rebuild, reembed's swap
    std::atomic<int64_t> pin_{INT64_MAX};  // a re-embed in progress needs ops past this
    std::atomic<int64_t> embed_ns_{0};
    bool background_ = false;
};

}  // namespace ragd
