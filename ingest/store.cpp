// store: SQLite source of truth. See store.h for the schema and its invariants.
#include "ingest/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "config/config.h"

namespace ragd {

namespace {

constexpr int kSchemaVersion = 1;

// Migration i brings the schema from version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    n_pages INTEGER NOT NULL,
    text_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE pages (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page_no INTEGER NOT NULL,
    start INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (document_id, page_no)
) WITHOUT ROWID;
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    page_start INTEGER NOT NULL,
    page_end INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    n_tokens INTEGER NOT NULL
);
CREATE INDEX chunks_by_document ON chunks(document_id, seq);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    document_id INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX documents_by_hash ON documents(hash);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_path ON jobs(path, id);
CREATE TABLE index_ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TRIGGER chunks_outbox_add AFTER INSERT ON chunks BEGIN
    INSERT INTO index_ops(op, chunk_id) VALUES (1, NEW.id);
END;
CREATE TRIGGER chunks_outbox_remove AFTER DELETE ON chunks BEGIN
    INSERT INTO index_ops(op, chunk_id) VALUES (2, OLD.id);
END;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

int64_t now_seconds() {
    return static_cast<int64_t>(std::time(nullptr));
}

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
    throw Error(Error::Code::IO, "database: " + what + ": " + (db ? sqlite3_errmsg(db) : "?"));
}

// A prepared statement, finalized on scope exit. Binds are 1-based, columns 0-based.
class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail(db, "prepare");
    }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    Stmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    // Returns true while a row is available.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(db_, "step");
    }
    void run() {
        while (step()) {
        }
    }
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
    int i32(int col) const { return sqlite3_column_int(stmt_, col); }
    std::string text(int col) const {
        const unsigned char* p = sqlite3_column_text(stmt_, col);
        int n = sqlite3_column_bytes(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
                 : std::string();
    }

  private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        throw Error(Error::Code::IO, std::string("database: ") + msg);
    }
}

// BEGIN IMMEDIATE ... COMMIT, rolled back if the scope is left without commit().
class Transaction {
  public:
    explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
        exec(db_, "COMMIT");
        done_ = true;
    }

  private:
    sqlite3* db_;
    bool done_ = false;
};

constexpr const char* kDocumentColumns =
    "d.id, d.hash, d.path, d.name, d.collection, d.kind, d.bytes, d.n_pages, d.text_bytes, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id), d.created_at, d.updated_at";

DocumentRow read_document(const Stmt& s) {
    DocumentRow d;
    d.id = s.i64(0);
    d.hash = s.text(1);
    d.path = s.text(2);
    d.name = s.text(3);
    d.collection = s.text(4);
    d.kind = s.text(5);
    d.bytes = s.i64(6);
    d.n_pages = s.i32(7);
    d.text_bytes = s.i64(8);
    d.n_chunks = s.i64(9);
    d.created_at = s.i64(10);
    d.updated_at = s.i64(11);
    return d;
}

constexpr const char* kChunkColumns =
    "c.id, c.document_id, c.seq, c.page_start, c.page_end, c.start, c.end, c.text, c.n_tokens, "
    "d.name, d.path, d.collection";

ChunkRow read_chunk(const Stmt& s) {
    ChunkRow c;
    c.id = s.i64(0);
    c.document_id = s.i64(1);
    c.seq = s.i32(2);
    c.page_start = s.i32(3);
    c.page_end = s.i32(4);
    c.start = s.i64(5);
    c.end = s.i64(6);
    c.text = s.text(7);
    c.n_tokens = s.i32(8);
    c.document = s.text(9);
    c.path = s.text(10);
    c.collection = s.text(11);
    return c;
}

constexpr const char* kJobColumns =
    "id, path, collection, state, error, result, document_id, pages, chunks, attempts, "
    "created_at, updated_at";

JobRow read_job(const Stmt& s) {
    JobRow j;
    j.id = s.i64(0);
    j.path = s.text(1);
    j.collection = s.text(2);
    j.state = s.text(3);
    j.error = s.text(4);
    j.result = s.text(5);
    j.document_id = s.i64(6);
    j.pages = s.i32(7);
    j.chunks = s.i32(8);
    j.attempts = s.i32(9);
    j.created_at = s.i64(10);
    j.updated_at = s.i64(11);
    return j;
}

const char* result_name(Store::PutResult r) {
    switch (r) {
        case Store::PutResult::Added:
            return "added";
        case Store::PutResult::Replaced:
            return "replaced";
        case Store::PutResult::Unchanged:
            return "unchanged";
    }
    return "?";
}

}  // namespace

Store::Store(const std::string& data_dir) : data_dir_(data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec || !std::filesystem::is_directory(data_dir))
        throw Error(Error::Code::IO, "cannot create data directory " + data_dir + ": " +
                                         (ec ? ec.message() : "not a directory"));
    std::string path = data_dir + "/ragd.db";
    int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error(Error::Code::IO, "cannot open " + path + ": " + msg);
    }
    try {
        sqlite3_busy_timeout(db_, 30000);
        sqlite3_extended_result_codes(db_, 1);
        // journal_mode is the first read of the file: a non-database fails here.
        if (sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw Error(Error::Code::Corrupt,
                        path + " is not a ragd database (" + sqlite3_errmsg(db_) + ")");
        exec(db_, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;");
        int version = 0;
        {
            Stmt s(db_, "PRAGMA user_version");
            if (s.step()) version = s.i32(0);
        }
        if (version > kSchemaVersion)
            throw Error(Error::Code::Corrupt, path + " has schema version " +
                                                  std::to_string(version) +
                                                  ", newer than this ragd understands (" +
                                                  std::to_string(kSchemaVersion) + ")");
        if (version < kSchemaVersion) {
            Transaction tx(db_);
            // Re-read under the write lock: another process may have migrated meanwhile.
            Stmt s(db_, "PRAGMA user_version");
            version = s.step() ? s.i32(0) : 0;
            for (int v = version; v < kSchemaVersion; ++v) exec(db_, kMigrations[v]);
            std::string set = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
            exec(db_, set.c_str());
            tx.commit();
        }
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

Store::~Store() {
    sqlite3_close(db_);
}

Store::PutResult Store::put_document(const DocumentRow& doc, const std::vector<std::string>& pages,
                                     const std::vector<NewChunk>& chunks, int64_t* id_out,
                                     int64_t job_id) {
    // Validate spans against the document text before touching the database.
    std::vector<int64_t> page_starts;
    int64_t text_bytes = 0;
    for (size_t i = 0; i < pages.size(); ++i) {
        if (i > 0) text_bytes += 2;  // "\n\f"
        page_starts.push_back(text_bytes);
        text_bytes += static_cast<int64_t>(pages[i].size());
    }
    const int n_pages = static_cast<int>(pages.size());
    for (const NewChunk& c : chunks) {
        if (c.start < 0 || c.end <= c.start || c.end > text_bytes ||
            static_cast<int64_t>(c.text.size()) != c.end - c.start || c.page_start < 1 ||
            c.page_end < c.page_start || c.page_end > n_pages)
            throw Error(Error::Code::InvalidArgument, "chunk span [" + std::to_string(c.start) +
                                                          ", " + std::to_string(c.end) +
                                                          ") does not fit document " + doc.path);
    }

    Transaction tx(db_);
    int64_t now = now_seconds();
    PutResult result = PutResult::Added;
    int64_t id = 0;
    std::optional<DocumentRow> old = document_by_path(doc.path);
    if (old && old->hash == doc.hash) {
        // The same bytes at the same path: nothing to store, but honour a new collection.
        id = old->id;
        result = PutResult::Unchanged;
        if (old->collection != doc.collection) set_collection_locked(id, doc.collection);
    } else if (old) {
        id = old->id;
        result = PutResult::Replaced;
        Stmt(db_, "DELETE FROM chunks WHERE document_id = ?").bind(1, id).run();
        Stmt(db_, "DELETE FROM pages WHERE document_id = ?").bind(1, id).run();
        Stmt(db_,
             "UPDATE documents SET hash = ?, name = ?, collection = ?, kind = ?, bytes = ?, "
             "n_pages = ?, text_bytes = ?, updated_at = ? WHERE id = ?")
            .bind(1, doc.hash)
            .bind(2, doc.name)
            .bind(3, doc.collection)
            .bind(4, doc.kind)
            .bind(5, doc.bytes)
            .bind(6, n_pages)
            .bind(7, text_bytes)
            .bind(8, now)
            .bind(9, id)
            .run();
    } else {
        Stmt ins(db_,
                 "INSERT INTO documents(hash, path, name, collection, kind, bytes, n_pages, "
                 "text_bytes, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)");
        ins.bind(1, doc.hash)
            .bind(2, doc.path)
            .bind(3, doc.name)
            .bind(4, doc.collection)
            .bind(5, doc.kind)
            .bind(6, doc.bytes)
            .bind(7, n_pages)
            .bind(8, text_bytes)
            .bind(9, now)
            .bind(10, now)
            .run();
        id = sqlite3_last_insert_rowid(db_);
    }
    if (result != PutResult::Unchanged) {
        Stmt page_ins(db_, "INSERT INTO pages(document_id, page_no, start, text) VALUES (?,?,?,?)");
        for (int i = 0; i < n_pages; ++i) {
            page_ins.bind(1, id).bind(2, i + 1).bind(3, page_starts[i]).bind(4, pages[i]).run();
            page_ins.reset();
        }
        Stmt chunk_ins(db_,
                       "INSERT INTO chunks(document_id, seq, page_start, page_end, start, end, "
                       "text, n_tokens) VALUES (?,?,?,?,?,?,?,?)");
        for (size_t i = 0; i < chunks.size(); ++i) {
            const NewChunk& c = chunks[i];
            chunk_ins.bind(1, id)
                .bind(2, static_cast<int64_t>(i))
                .bind(3, c.page_start)
                .bind(4, c.page_end)
                .bind(5, c.start)
                .bind(6, c.end)
                .bind(7, c.text)
                .bind(8, c.n_tokens)
                .run();
            chunk_ins.reset();
        }
    }
    if (job_id > 0) {
        // In the same transaction: a crash leaves both the document and its job as they were.
        DocumentRow stored = *document(id);
        finish_job_locked(job_id, result, id, stored.n_pages, static_cast<int>(stored.n_chunks));
    }
    tx.commit();
    if (id_out) *id_out = id;
    return result;
}

void Store::set_collection_locked(int64_t id, const std::string& collection) {
    Stmt(db_, "UPDATE documents SET collection = ?, updated_at = ? WHERE id = ?")
        .bind(1, collection)
        .bind(2, now_seconds())
        .bind(3, id)
        .run();
    // The keyword index files chunks under their collection: re-add them (idempotent).
    Stmt(db_, "INSERT INTO index_ops(op, chunk_id) SELECT 1, id FROM chunks WHERE document_id = ?")
        .bind(1, id)
        .run();
}

void Store::set_collection(int64_t id, const std::string& collection) {
    Transaction tx(db_);
    set_collection_locked(id, collection);
    tx.commit();
}

bool Store::remove_document(int64_t id) {
    return remove_documents({id}) > 0;
}

int Store::remove_documents(const std::vector<int64_t>& ids) {
    Transaction tx(db_);
    int removed = 0;
    Stmt del_chunks(db_, "DELETE FROM chunks WHERE document_id = ?");
    Stmt del_doc(db_, "DELETE FROM documents WHERE id = ?");
    for (int64_t id : ids) {
        // Chunks first so each delete fires the outbox trigger (cascades would too; explicit
        // is clearer), then the document, whose cascade removes the pages.
        del_chunks.bind(1, id).run();
        del_chunks.reset();
        del_doc.bind(1, id).run();
        removed += sqlite3_changes(db_) > 0;
        del_doc.reset();
    }
    tx.commit();
    return removed;
}

std::optional<DocumentRow> Store::document(int64_t id) {
    Stmt s(
        db_,
        (std::string("SELECT ") + kDocumentColumns + " FROM documents d WHERE d.id = ?").c_str());
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_document(s);
}

std::optional<DocumentRow> Store::document_by_path(const std::string& abs_path) {
    Stmt s(
        db_,
        (std::string("SELECT ") + kDocumentColumns + " FROM documents d WHERE d.path = ?").c_str());
    s.bind(1, abs_path);
    if (!s.step()) return std::nullopt;
    return read_document(s);
}

std::optional<DocumentRow> Store::document_by_hash(const std::string& hash) {
    Stmt s(
        db_,
        (std::string("SELECT ") + kDocumentColumns + " FROM documents d WHERE d.hash = ?").c_str());
    s.bind(1, hash);
    if (!s.step()) return std::nullopt;
    return read_document(s);
}

std::vector<DocumentRow> Store::documents() {
    Stmt s(db_,
           (std::string("SELECT ") + kDocumentColumns + " FROM documents d ORDER BY d.id").c_str());
    std::vector<DocumentRow> out;
    while (s.step()) out.push_back(read_document(s));
    return out;
}

std::vector<PageRow> Store::pages(int64_t document_id) {
    Stmt s(db_, "SELECT page_no, start, text FROM pages WHERE document_id = ? ORDER BY page_no");
    s.bind(1, document_id);
    std::vector<PageRow> out;
    while (s.step()) out.push_back(PageRow{s.i32(0), s.i64(1), s.text(2)});
    return out;
}

std::string Store::document_text(int64_t document_id) {
    std::string text;
    bool first = true;
    for (const PageRow& p : pages(document_id)) {
        if (!first) text += "\n\f";
        first = false;
        text += p.text;
    }
    return text;
}

std::optional<ChunkRow> Store::chunk(int64_t id) {
    auto rows = chunks(std::vector<int64_t>{id});
    if (rows.empty()) return std::nullopt;
    return std::move(rows[0]);
}

std::vector<ChunkRow> Store::chunks(const std::vector<int64_t>& ids) {
    Stmt s(db_, (std::string("SELECT ") + kChunkColumns +
                 " FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?")
                    .c_str());
    std::vector<ChunkRow> out;
    out.reserve(ids.size());
    for (int64_t id : ids) {
        s.bind(1, id);
        if (s.step()) out.push_back(read_chunk(s));
        s.reset();
    }
    return out;
}

std::vector<ChunkRow> Store::chunks_of_document(int64_t document_id) {
    Stmt s(db_, (std::string("SELECT ") + kChunkColumns +
                 " FROM chunks c JOIN documents d ON d.id = c.document_id"
                 " WHERE c.document_id = ? ORDER BY c.seq")
                    .c_str());
    s.bind(1, document_id);
    std::vector<ChunkRow> out;
    while (s.step()) out.push_back(read_chunk(s));
    return out;
}

void Store::for_each_chunk(const std::function<void(const ChunkRow&)>& fn) {
    Stmt s(db_, (std::string("SELECT ") + kChunkColumns +
                 " FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id")
                    .c_str());
    while (s.step()) fn(read_chunk(s));
}

std::vector<int64_t> Store::chunk_ids(const std::string& collection, int64_t document_id) {
    Stmt s(db_,
           "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
           " WHERE (?1 = '' OR d.collection = ?1) AND (?2 = 0 OR c.document_id = ?2)"
           " ORDER BY c.id");
    s.bind(1, collection).bind(2, document_id);
    std::vector<int64_t> out;
    while (s.step()) out.push_back(s.i64(0));
    return out;
}

int64_t Store::enqueue_job(const std::string& abs_path, const std::string& collection) {
    Transaction tx(db_);
    Stmt find(db_,
              "SELECT id FROM jobs WHERE path = ? AND state IN ('pending', 'running') "
              "ORDER BY id LIMIT 1");
    find.bind(1, abs_path);
    if (find.step()) {
        int64_t id = find.i64(0);
        find.reset();
        Stmt(db_, "UPDATE jobs SET collection = ? WHERE id = ? AND state = 'pending'")
            .bind(1, collection)
            .bind(2, id)
            .run();
        tx.commit();
        return id;
    }
    int64_t now = now_seconds();
    Stmt(db_,
         "INSERT INTO jobs(path, collection, state, created_at, updated_at) "
         "VALUES (?, ?, 'pending', ?, ?)")
        .bind(1, abs_path)
        .bind(2, collection)
        .bind(3, now)
        .bind(4, now)
        .run();
    int64_t id = sqlite3_last_insert_rowid(db_);
    tx.commit();
    return id;
}

std::optional<JobRow> Store::claim_job() {
    Transaction tx(db_);
    Stmt s(db_, (std::string("UPDATE jobs SET state = 'running', attempts = attempts + 1, "
                             "updated_at = ? WHERE id = (SELECT id FROM jobs WHERE state = "
                             "'pending' ORDER BY id LIMIT 1) RETURNING ") +
                 kJobColumns)
                    .c_str());
    s.bind(1, now_seconds());
    std::optional<JobRow> job;
    if (s.step()) job = read_job(s);
    s.reset();  // finish the statement before COMMIT
    tx.commit();
    return job;
}

void Store::finish_job(int64_t job_id, PutResult result, int64_t document_id, int pages,
                       int chunks) {
    finish_job_locked(job_id, result, document_id, pages, chunks);
}

void Store::finish_job_locked(int64_t job_id, PutResult result, int64_t document_id, int pages,
                              int chunks) {
    Stmt(db_,
         "UPDATE jobs SET state = 'done', error = '', result = ?, document_id = ?, pages = ?, "
         "chunks = ?, updated_at = ? WHERE id = ?")
        .bind(1, std::string(result_name(result)))
        .bind(2, document_id)
        .bind(3, pages)
        .bind(4, chunks)
        .bind(5, now_seconds())
        .bind(6, job_id)
        .run();
}

void Store::fail_job(int64_t job_id, const std::string& error) {
    Stmt(db_, "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE id = ?")
        .bind(1, error)
        .bind(2, now_seconds())
        .bind(3, job_id)
        .run();
}

int Store::requeue_running_jobs() {
    Transaction tx(db_);
    // A job whose process died kMaxJobAttempts times is taken to be what kills it.
    Stmt(db_,
         "UPDATE jobs SET state = 'failed', error = path || ': gave up after ' || attempts || "
         "' attempts (the ingesting process died each time)', updated_at = ? "
         "WHERE state = 'running' AND attempts >= ?")
        .bind(1, now_seconds())
        .bind(2, kMaxJobAttempts)
        .run();
    Stmt(db_, "UPDATE jobs SET state = 'pending', updated_at = ? WHERE state = 'running'")
        .bind(1, now_seconds())
        .run();
    int n = sqlite3_changes(db_);
    tx.commit();
    return n;
}

std::optional<JobRow> Store::job(int64_t id) {
    Stmt s(db_, (std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?").c_str());
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_job(s);
}

std::vector<JobRow> Store::jobs(const std::string& state_filter) {
    Stmt s(db_, (std::string("SELECT ") + kJobColumns +
                 " FROM jobs WHERE (?1 = '' OR state = ?1) ORDER BY id")
                    .c_str());
    s.bind(1, state_filter);
    std::vector<JobRow> out;
    while (s.step()) out.push_back(read_job(s));
    return out;
}

std::vector<IndexOp> Store::ops_after(int64_t after_seq, int limit) {
    Stmt s(db_, "SELECT seq, op, chunk_id FROM index_ops WHERE seq > ? ORDER BY seq LIMIT ?");
    s.bind(1, after_seq).bind(2, limit);
    std::vector<IndexOp> out;
    while (s.step()) {
        IndexOp op;
        op.seq = s.i64(0);
        op.kind = s.i32(1) == IndexOp::Remove ? IndexOp::Remove : IndexOp::Add;
        op.chunk_id = s.i64(2);
        out.push_back(op);
    }
    return out;
}

int64_t Store::last_op_seq() {
    // sqlite_sequence keeps the AUTOINCREMENT high-water mark even after pruning.
    Stmt s(db_, "SELECT seq FROM sqlite_sequence WHERE name = 'index_ops'");
    return s.step() ? s.i64(0) : 0;
}

int64_t Store::ops_pruned_upto() {
    Stmt s(db_, "SELECT value FROM meta WHERE key = 'ops_pruned_upto'");
    return s.step() ? s.i64(0) : 0;
}

void Store::prune_ops(int64_t upto_seq) {
    Transaction tx(db_);
    if (upto_seq <= ops_pruned_upto()) {
        tx.commit();
        return;
    }
    Stmt(db_, "DELETE FROM index_ops WHERE seq <= ?").bind(1, upto_seq).run();
    Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('ops_pruned_upto', ?)")
        .bind(1, std::to_string(upto_seq))
        .run();
    tx.commit();
}

StoreCounts Store::counts() {
    StoreCounts c;
    Stmt s(db_,
           "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM pages), "
           "(SELECT count(*) FROM chunks), "
           "(SELECT count(*) FROM jobs WHERE state = 'pending'), "
           "(SELECT count(*) FROM jobs WHERE state = 'running'), "
           "(SELECT count(*) FROM jobs j WHERE state = 'failed' AND NOT EXISTS "
           " (SELECT 1 FROM jobs k WHERE k.path = j.path AND k.id > j.id)), "
           "(SELECT count(*) FROM jobs WHERE state = 'done')");
    if (s.step()) {
        c.documents = s.i64(0);
        c.pages = s.i64(1);
        c.chunks = s.i64(2);
        c.jobs_pending = s.i64(3);
        c.jobs_running = s.i64(4);
        c.jobs_failed = s.i64(5);
        c.jobs_done = s.i64(6);
    }
    return c;
}

std::unique_ptr<DataDirLock> DataDirLock::try_acquire(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    std::string path = data_dir + "/lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(Error::Code::IO, "cannot open " + path + ": " + std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        ::close(fd);
        if (err == EWOULDBLOCK) return nullptr;
        throw Error(Error::Code::IO, "cannot lock " + path + ": " + std::strerror(err));
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
    ::close(fd_);
}

std::string sha256_hex(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw Error(Error::Code::Internal, "SHA-256 failed");
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 15]);
    }
    return out;
}

}  // namespace ragd
