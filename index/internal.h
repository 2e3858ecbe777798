// index internals: the two derived indexes behind Indexes (index.h). Private to index/
// and its tests.
//
// Both classes guard themselves: any number of threads may search while one thread
// writes (KeywordIndex serializes everything on one mutex because Xapian objects are not
// thread-safe; VectorIndex lets searches share a reader lock). Only one thread may drive
// the write methods at a time (the sync/rebuild caller).
// Errors: throw ragd::Error; Xapian and FAISS exceptions are translated inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "index/index.h"

namespace Xapian {
class Database;
class WritableDatabase;
class Stopper;
}  // namespace Xapian

namespace ragd {

// A document to put in the keyword index.
struct KeywordDoc {
    int64_t chunk_id = 0;
    int64_t document_id = 0;
    std::string collection;
    std::string text;
};

// ---------------------------------------------------------------------------------------
// KeywordIndex: the Xapian database at DATA_DIR/xapian (layout in index.h).
//
// The writer (a WritableDatabase, which takes Xapian's single-writer lock) is opened on the
// first write or applied_seq() call; until then searches use a read-only Database, so a
// process that only searches never takes the lock.
class KeywordIndex {
  public:
    explicit KeywordIndex(std::string dir);
    ~KeywordIndex();
    KeywordIndex(const KeywordIndex&) = delete;
    KeywordIndex& operator=(const KeywordIndex&) = delete;

    // The last op seq committed with the documents; nullopt if the database is missing,
    // empty of metadata (never completed a build) or unreadable. An unreadable database
    // is removed (with a message on stderr) so the caller can rebuild it.
    // Throws Error::Busy if another process holds the Xapian write lock.
    std::optional<int64_t> applied_seq();

    // Removes the database and starts an empty one (applied_seq() == nullopt until commit).
    void reset();
    // Adds or replaces documents (keyed by chunk id); removes by chunk id (absent: no-op).
    void put(const std::vector<KeywordDoc>& docs);
    void remove(const std::vector<int64_t>& chunk_ids);
    // Commits pending changes together with applied_seq.
    void commit(int64_t applied_seq);

    // Throws Error::InvalidArgument on a malformed query; empty or stop-word-only -> {}.
    std::vector<KeywordHit> search(const std::string& query, int k, const IndexFilter& filter);
    int64_t doc_count();

    // The boolean filter terms (exposed for tests).
    static std::string collection_term(const std::string& collection);
    static std::string document_term(int64_t document_id);

  private:
    Xapian::Database& reader();  // REQUIRES: mu_ held
    void open_writer();          // REQUIRES: mu_ held

    std::string dir_;
    std::mutex mu_;  // guards everything below
    std::unique_ptr<Xapian::WritableDatabase> writer_;
    std::unique_ptr<Xapian::Database> reader_;  // only while there is no writer
    std::unique_ptr<Xapian::Stopper> stopper_;
};

// ---------------------------------------------------------------------------------------
// VectorIndex: FAISS HNSW (flat storage, inner product) with ids = chunk ids, tombstones
// for removed ids, and the RAGDVEC1 container file (layout in vector.cpp).
class VectorIndex {
  public:
    VectorIndex(std::string path, std::string embedder_name, int dim, int ef_search);
    ~VectorIndex();
    VectorIndex(const VectorIndex&) = delete;
    VectorIndex& operator=(const VectorIndex&) = delete;

    // Loads the container file. Returns false, leaving the index empty and
    // applied_seq() == nullopt, if the file is missing, corrupt (message on stderr), or
    // built by another embedder or dimension.
    bool load();
    // Writes the container atomically (temp file, fsync, rename, fsync dir). Compacts
    // first if tombstones exceed a quarter of the stored vectors.
    // REQUIRES: applied_seq() has a value.
    void save();
    // Empties the index (applied_seq() == nullopt until set).
    void reset();

    std::optional<int64_t> applied_seq() const;
    void set_applied_seq(int64_t seq);

    // True if id is stored and not tombstoned.
    bool contains(int64_t id) const;
    // Adds n vectors (n * dim floats, L2-normalized). Ids already live are skipped.
    void add(int64_t n, const int64_t* ids, const float* vectors);
    // Tombstones ids; absent or already removed ids are ignored.
    void remove(const std::vector<int64_t>& ids);
    // Rebuilds the graph from the live vectors (no re-embedding), dropping tombstones.
    void compact();

    // Top k by inner product among live vectors; if allowed is given, only among those
    // ids (exact brute force when the set is small, filtered HNSW otherwise).
    std::vector<VectorHit> search(const float* query, int k,
                                  const std::vector<int64_t>* allowed) const;

    int64_t live() const;        // stored - tombstoned
    int64_t stored() const;      // vectors in the FAISS index, tombstoned included
    int64_t tombstones() const;  // removed but still stored

    // Where save() writes from now on (after a built-beside index is renamed into place).
    void set_path(std::string path);
    const std::string& embedder_name() const { return embedder_name_; }

    // Compaction happens when tombstones > stored / 4 and tombstones >= this (tests lower
    // it).
    int64_t compact_min = 1024;
    // Filtered searches over at most this many allowed ids (or under 1/16 of the live
    // vectors) are answered exactly by brute force (tests lower it).
    size_t brute_max = 20000;

    struct State;  // FAISS objects; defined in vector.cpp

  private:
    bool needs_compaction() const;  // REQUIRES: mu_ held
    void compact_locked();          // REQUIRES: mu_ held exclusively

    std::string path_;
    std::string embedder_name_;
    int dim_;
    int ef_search_;
    mutable std::shared_mutex mu_;  // guards everything below
    std::unique_ptr<State> st_;
};

// The embedder name and dimension a RAGDVEC1 file records; false if the file is missing
// or its header is unreadable (the rest is checked by VectorIndex::load).
bool read_vector_header(const std::string& path, std::string* name, int* dim);

// The vector index in service and the embedder that built it (Indexes, index.h).
struct VectorSide {
    std::shared_ptr<const Embedder> embedder;
    std::unique_ptr<VectorIndex> index;
};

// The checksum that ends a RAGDVEC1 file, over the n bytes before it (for tests).
uint64_t vector_file_checksum(const uint8_t* p, size_t n);

// Inner product of two float vectors of length n: dot() is the fastest kernel this CPU
// runs (chosen once at startup), dot_generic() the portable reference.
using DotFn = float (*)(const float* a, const float* b, size_t n);
extern const DotFn dot;
float dot_generic(const float* a, const float* b, size_t n);

}  // namespace ragd
