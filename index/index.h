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

#include <cstdint>
#include <memory>
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
};

// The default embedder: needs no weights. Features: lowercased word unigrams and bigrams
// (on English stems, stop words dropped), and character 3- to 5-grams of each word (with
// boundary marks), each hashed (64-bit) and scattered with pseudo-random signs into `dim`
// dimensions (a sparse signed random projection), weighted by 1 + log(tf), then
// L2-normalized. name() = "hashed-ngram-v2".
std::unique_ptr<Embedder> make_hashed_embedder(int dim = 384);

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

// Both derived indexes of one data directory.
class Indexes {
  public:
    // Opens (creating if missing) the indexes of cfg.data_dir for reading and writing.
    // REQUIRES: the caller holds the data directory lock when it will write.
    Indexes(const Config& cfg, std::shared_ptr<const Embedder> embedder);
    ~Indexes();
    Indexes(const Indexes&) = delete;
    Indexes& operator=(const Indexes&) = delete;

    // Applies every index op in the store newer than what each index holds, commits both,
    // then prunes ops both have applied. If an index is missing, unreadable, built by a
    // different embedder, or older than the pruned ops, it is rebuilt from the store.
    // Returns the number of ops applied. Safe to call at any time; idempotent.
    int64_t sync(Store& store);
    // Drops both indexes and rebuilds them from every chunk in the store.
    void rebuild(Store& store);

    // Keyword search. The query uses Xapian's parser: stemming, stop words, "phrases",
    // AND/OR/NOT, +required -excluded. Throws Error::InvalidArgument on a malformed query.
    std::vector<KeywordHit> keyword_search(const std::string& query, int k,
                                           const IndexFilter& filter, Store& store);
    // Vector search with the embedder over the same text.
    std::vector<VectorHit> vector_search(const std::string& query, int k, const IndexFilter& filter,
                                         Store& store);

    int64_t keyword_docs();  // documents in Xapian (== live chunks when in sync)
    int64_t vectors();       // live vectors in FAISS (tombstones excluded)
    const Embedder& embedder() const { return *embedder_; }

  private:
    Config cfg_;
    std::shared_ptr<const Embedder> embedder_;
    std::unique_ptr<KeywordIndex> keyword_;
    std::unique_ptr<VectorIndex> vector_;
};

}  // namespace ragd
