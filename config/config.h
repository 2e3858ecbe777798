// config: settings shared by every stage, and the error type they throw.
//
// Failure convention (all stages): library code throws ragd::Error for bad input and IO
// failures; third-party exceptions (SQLite codes, Xapian, FAISS, poppler) are translated
// into ragd::Error at the stage that uses the library and never escape it. Broken
// invariants assert. The CLI and the server catch ragd::Error at their top level.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ragd {

class Error : public std::runtime_error {
  public:
    enum class Code {
        InvalidArgument,  // bad user input: flags, queries, request bodies
        NotFound,         // a file, document, job or chunk that does not exist
        Unsupported,      // a format or feature ragd does not handle
        Corrupt,          // a file or store whose content is malformed
        IO,               // the operating system refused: open, read, write, fsync
        Busy,             // another process holds the data directory
        Internal,         // a dependency failed in a way the caller cannot fix
    };
    Error(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Code code() const { return code_; }

  private:
    Code code_;
};

// Everything tunable. Defaults are what a user gets with no flags and no config file.
struct Config {
    std::string data_dir;  // resolved by resolve_data_dir()

    // ingest
    int workers = 2;                                // parallel ingestion jobs
    int chunk_tokens = 200;                         // target chunk size, in (approximate) tokens
    int chunk_overlap = 40;                         // tokens repeated between neighbouring chunks
    int64_t max_file_bytes = 256ll << 20;           // larger files fail their job
    int pdf_timeout_s = 120;                        // wall-clock limit of one PDF parse
    int64_t pdf_memory_bytes = 2048ll << 20;        // address-space limit of the PDF child
    std::string pdf_worker_exe = "/proc/self/exe";  // binary that implements __pdf-worker

    // retrieve
    int rrf_k = 60;             // reciprocal rank fusion constant
    int candidates = 50;        // hits taken from each retriever before fusion
    int context_tokens = 2048;  // budget for numbered passages handed to generation
    int hnsw_ef_search = 64;    // FAISS HNSW search breadth

    // models (BERT-family GGUF files, generate/bert.h)
    // embed_model: the vector index's embedder. "" = the one the data directory records
    // (DATA_DIR/embedders.json: the model that built vectors.faiss), else the built-in;
    // "builtin" = the built-in hashed embedder; anything else = a GGUF file.
    std::string embed_model;
    std::string rerank_model;  // cross-encoder reranking the fused candidates; "" = none
    int rerank_top_n = 50;     // fused hits the reranker rescores (then cut to k)
    int model_threads = 0;     // threads per embedding/reranking model; 0 = hardware
};

// The value of `embed_model` that selects the built-in hashed embedder.
inline constexpr const char* kBuiltinEmbedder = "builtin";

// Fills cfg->embed_model / rerank_model from $RAGD_EMBED_MODEL / $RAGD_RERANK_MODEL when
// they are empty (flags and config-file keys are applied by the caller, before or after
// as their precedence says).
void apply_model_env(Config* cfg);

// Parses TEXT as a decimal integer in [lo, hi]. Throws Error::InvalidArgument naming WHAT
// (a flag or key) on anything else: empty, trailing junk, out of range.
int64_t parse_int(const std::string& what, const std::string& text, int64_t lo, int64_t hi);

// The data directory contract: --data DIR, else $RAGD_DATA, else ./ragd-data.
std::string resolve_data_dir(const std::string& flag_value);

// Approximate token count of UTF-8 text without a model tokenizer: each word counts one,
// plus one per 6 bytes past its first, and each punctuation byte counts one. Used for chunk sizes
// and context budgets until an embedding model supplies its own tokenizer.
int approx_tokens(const char* text, size_t len);
inline int approx_tokens(const std::string& s) {
    return approx_tokens(s.data(), s.size());
}

}  // namespace ragd
