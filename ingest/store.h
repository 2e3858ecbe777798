// store: the SQLite database that is ragd's source of truth.
//
// File: DATA_DIR/ragd.db, WAL mode, foreign keys on, schema version in PRAGMA user_version
// (migrations in store.cpp run in order inside one transaction on open).
//
// Schema (version 1):
//   documents(id INTEGER PRIMARY KEY, hash TEXT  -- SHA-256 of the file bytes, hex
//             path TEXT UNIQUE  -- absolute path it was ingested from
//             name TEXT, collection TEXT, kind TEXT  -- "pdf" | "text" | "markdown"
//             bytes INTEGER, n_pages INTEGER, text_bytes INTEGER, created_at, updated_at)
//   pages(document_id -> documents ON DELETE CASCADE, page_no INTEGER  -- 1-based
//         start INTEGER  -- byte offset of the page in the document text
//         text TEXT, PRIMARY KEY(document_id, page_no))
//   chunks(id INTEGER PRIMARY KEY AUTOINCREMENT  -- never reused, so index ids never alias
//          document_id -> documents ON DELETE CASCADE, seq INTEGER,
//          page_start INTEGER, page_end INTEGER,
//          start INTEGER, end INTEGER  -- byte span [start, end) in the document text
//          text TEXT, n_tokens INTEGER)
//   jobs(id INTEGER PRIMARY KEY, path TEXT, collection TEXT,
//        state TEXT  -- pending | running | done | failed
//        error TEXT, result TEXT  -- added | replaced | unchanged
//        document_id INTEGER, pages INTEGER, chunks INTEGER, attempts INTEGER,
//        created_at, updated_at)
//   index_ops(seq INTEGER PRIMARY KEY AUTOINCREMENT, op INTEGER  -- 1 add, 2 remove
//             chunk_id INTEGER)
//   meta(key TEXT PRIMARY KEY, value TEXT)  -- "ops_pruned_upto"
//
// Document text: the pages of a document concatenated in order, each page followed by
// "\n\f" except the last. A chunk's [start, end) and a page's start are byte offsets into
// it, so text.substr(start, end - start) == chunk.text exactly.
//
// Index outbox: triggers append an index_ops row in the same transaction as every chunk
// insert and delete (cascades included). The derived indexes (Xapian, FAISS) remember
// the last seq they applied, atomically with their own data, and replay the rest after a
// crash; ops are pruned once every index has applied them. Chunk id == FAISS id == the
// Xapian unique term "Q<id>".
//
// Threads: a Store is one SQLite connection; use one per thread. Several processes and
// threads may share a database: writers serialize on SQLite's lock with a busy timeout.
// Errors: throws ragd::Error (IO for SQLite failures, NotFound, InvalidArgument).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace ragd {

struct DocumentRow {
    int64_t id = 0;
    std::string hash;        // SHA-256 of the file bytes, lowercase hex
    std::string path;        // absolute path
    std::string name;        // file name shown in citations
    std::string collection;  // "" = default collection
    std::string kind;        // "pdf" | "text" | "markdown"
    int64_t bytes = 0;       // size of the file
    int n_pages = 0;
    int64_t text_bytes = 0;  // size of the document text
    int64_t n_chunks = 0;    // filled by reads, ignored by writes
    int64_t created_at = 0;  // unix seconds
    int64_t updated_at = 0;
};

struct PageRow {
    int page_no = 0;    // 1-based
    int64_t start = 0;  // byte offset in the document text
    std::string text;
};

// A chunk to be stored: its span must lie inside the document text.
struct NewChunk {
    int page_start = 0, page_end = 0;  // 1-based, inclusive
    int64_t start = 0, end = 0;        // byte span [start, end) in the document text
    std::string text;                  // == document text [start, end)
    int n_tokens = 0;
};

struct ChunkRow {
    int64_t id = 0;
    int64_t document_id = 0;
    int seq = 0;  // 0-based position within its document
    int page_start = 0, page_end = 0;
    int64_t start = 0, end = 0;
    std::string text;
    int n_tokens = 0;
    // joined from documents, for citations and index filters
    std::string document;  // file name
    std::string path;
    std::string collection;
};

struct JobRow {
    int64_t id = 0;
    std::string path;
    std::string collection;
    std::string state;   // pending | running | done | failed
    std::string error;   // set when failed
    std::string result;  // added | replaced | unchanged, set when done
    int64_t document_id = 0;
    int pages = 0, chunks = 0, attempts = 0;
    int64_t created_at = 0, updated_at = 0;
};

struct IndexOp {
    enum Kind : int { Add = 1, Remove = 2 };
    int64_t seq = 0;
    Kind kind = Add;
    int64_t chunk_id = 0;
};

struct StoreCounts {
    int64_t documents = 0, pages = 0, chunks = 0;
    int64_t jobs_pending = 0, jobs_running = 0, jobs_failed = 0, jobs_done = 0;
};

class Store {
  public:
    // Opens (creating if needed) DATA_DIR/ragd.db, creating DATA_DIR too. Runs migrations.
    // Throws Error::IO if the directory or database can't be opened, Error::Corrupt if
    // the file is not a ragd database or is from a newer ragd.
    explicit Store(const std::string& data_dir);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::string& data_dir() const { return data_dir_; }

    // ---- documents ----
    enum class PutResult { Added, Replaced, Unchanged };
    // Stores a parsed document atomically (one transaction). A document is its path: if the
    // path holds the same bytes (hash) already, nothing changes but its collection
    // (Unchanged); if it holds other bytes, its pages and chunks are replaced and it keeps
    // its id (Replaced); else it is added. The same bytes at two paths are two documents.
    // doc.id is ignored; *id_out receives the document's id in every case. With job_id > 0
    // that job is finished in the same transaction, so a crash cannot separate them.
    // REQUIRES: chunk spans lie inside the concatenated page text (checked: InvalidArgument).
    PutResult put_document(const DocumentRow& doc, const std::vector<std::string>& pages,
                           const std::vector<NewChunk>& chunks, int64_t* id_out,
                           int64_t job_id = 0);
    // Moves a document to another collection (its chunks are re-indexed under it).
    void set_collection(int64_t id, const std::string& collection);
    // Deletes a document with its pages and chunks. Returns false if there was none.
    bool remove_document(int64_t id);
    // Deletes several documents in one transaction; returns how many existed.
    int remove_documents(const std::vector<int64_t>& ids);

    std::optional<DocumentRow> document(int64_t id);
    std::optional<DocumentRow> document_by_path(const std::string& abs_path);
    std::optional<DocumentRow> document_by_hash(const std::string& hash);
    std::vector<DocumentRow> documents();  // ordered by id
    std::vector<PageRow> pages(int64_t document_id);
    std::string document_text(int64_t document_id);

    // ---- chunks ----
    std::optional<ChunkRow> chunk(int64_t id);
    // Chunks in the order of ids given; ids that do not exist are skipped.
    std::vector<ChunkRow> chunks(const std::vector<int64_t>& ids);
    std::vector<ChunkRow> chunks_of_document(int64_t document_id);
    // Calls fn for every chunk in id order (streaming; for reindexing).
    void for_each_chunk(const std::function<void(const ChunkRow&)>& fn);
    // Ids of the chunks in a collection and/or document (empty / 0 = any), for filters.
    std::vector<int64_t> chunk_ids(const std::string& collection, int64_t document_id);

    // ---- jobs ----
    // Adds a pending job unless one is already pending or running for the same path
    // (returns that job's id then).
    int64_t enqueue_job(const std::string& abs_path, const std::string& collection);
    // Atomically takes the oldest pending job and marks it running (attempts + 1).
    std::optional<JobRow> claim_job();
    void finish_job(int64_t job_id, PutResult result, int64_t document_id, int pages, int chunks);
    void fail_job(int64_t job_id, const std::string& error);
    // After a crash: jobs left "running" by a dead process go back to pending, unless they
    // have been tried kMaxJobAttempts times already (they fail then: a file that kills the
    // ingesting process must not kill every later run; the limit is high enough that
    // kills from outside, which land on whatever job is running, do not trip it). Returns
    // the number requeued. REQUIRES: the caller holds the data directory lock.
    static constexpr int kMaxJobAttempts = 5;
    int requeue_running_jobs();
    std::optional<JobRow> job(int64_t id);
    std::vector<JobRow> jobs(const std::string& state_filter = "");

    // ---- index outbox ----
    // Ops with seq > after_seq in seq order, at most limit of them.
    std::vector<IndexOp> ops_after(int64_t after_seq, int limit);
    int64_t last_op_seq();      // 0 if none was ever written
    int64_t ops_pruned_upto();  // every op with seq <= this has been deleted
    void prune_ops(int64_t upto_seq);

    // Counts; jobs_failed counts paths whose latest job failed (a later success clears it).
    StoreCounts counts();

    sqlite3* handle() { return db_; }  // for tests and migrations only

  private:
    // REQUIRE: inside a transaction.
    void set_collection_locked(int64_t id, const std::string& collection);
    void finish_job_locked(int64_t job_id, PutResult result, int64_t document_id, int pages,
                           int chunks);

    std::string data_dir_;
    sqlite3* db_ = nullptr;
};

// An exclusive advisory lock (flock) on DATA_DIR/lock, held by the process that writes
// the data directory (ingest, reindex, docs rm, serve). Released on destruction or when
// the process dies, so a kill -9 never leaves a stale lock.
class DataDirLock {
  public:
    // Returns nullptr if another process holds the lock. Throws Error::IO if the lock file
    // can't be created.
    static std::unique_ptr<DataDirLock> try_acquire(const std::string& data_dir);
    ~DataDirLock();
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;

  private:
    explicit DataDirLock(int fd) : fd_(fd) {}
    int fd_;
};

// Lowercase hex SHA-256 of a byte string.
std::string sha256_hex(const std::string& bytes);

}  // namespace ragd
