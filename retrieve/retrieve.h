// retrieve: question -> ranked chunks -> numbered passages within a token budget.
//
// Hybrid mode runs keyword (Xapian BM25) and vector (FAISS) retrieval, each for
// Config::candidates hits, and fuses the two rankings by reciprocal rank fusion:
//   score(chunk) = sum over retrievers of 1 / (rrf_k + rank), rank starting at 1.
// Ties break by keyword rank, then by chunk id, so results are deterministic.
// An optional reranker (a cross-encoder) then reorders the top rerank_top_n fused hits.
// Errors: throws ragd::Error (InvalidArgument for a bad query or k).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "index/index.h"
#include "ingest/store.h"

namespace ragd {

enum class SearchMode { Hybrid, Keyword, Vector };
// "hybrid" | "keyword" | "vector"; throws Error::InvalidArgument otherwise.
SearchMode parse_search_mode(const std::string& s);
const char* search_mode_name(SearchMode m);

struct SearchRequest {
    std::string query;
    int k = 5;  // 1..1000
    SearchMode mode = SearchMode::Hybrid;
    IndexFilter filter;
};

struct Hit {
    ChunkRow chunk;
    double score = 0;          // the score of the mode (RRF, BM25 or cosine), before reranking
    int keyword_rank = 0;      // 1-based rank in the keyword list, 0 if absent
    int vector_rank = 0;       // 1-based rank in the vector list, 0 if absent
    double keyword_score = 0;  // BM25, if keyword_rank > 0
    double vector_score = 0;   // cosine, if vector_rank > 0
    bool reranked = false;     // a reranker ordered the hits: rerank_score is set
    double rerank_score = 0;   // the reranker's raw relevance (higher is better)
    int fused_rank = 0;        // 1-based rank before reranking (among the loaded hits)
};

// A second stage that rescores (query, passage) pairs, e.g. a cross-encoder.
class Reranker {
  public:
    virtual ~Reranker() = default;
    virtual std::string name() const = 0;
    // Relevance of each text to QUERY, higher is more relevant; texts.size() scores.
    // Thread-safe. Throws ragd::Error.
    virtual std::vector<float> score(const std::string& query,
                                     const std::vector<std::string>& texts) const = 0;
};

// A cross-encoder reranker (bge-reranker style: a BERT-family GGUF with a classification
// head, generate/bert.h) with THREADS threads (0 = hardware). name() = "gguf:<general.name>".
// Throws Error with a one-line message naming the file (NotFound, Unsupported for a model
// without a classification head, ...).
std::unique_ptr<Reranker> make_gguf_reranker(const std::string& path, int threads = 0);

// Retrieves, fuses, filters and loads the top hits. With a RERANKER, the best
// max(cfg.rerank_top_n, k) fused hits are rescored by it and the k best by its score
// returned (ties keep the fused order); `score` stays the fused score. Without one the
// ranking is the fused one.
std::vector<Hit> search(Indexes& indexes, Store& store, const SearchRequest& req, const Config& cfg,
                        const Reranker* reranker = nullptr);

// Reciprocal rank fusion of two ranked id lists (best first). Returns (id, score) best
// first, ties broken as described above.
struct Fused {
    int64_t chunk_id;
    double score;
    int keyword_rank, vector_rank;
};
std::vector<Fused> rrf_fuse(const std::vector<int64_t>& keyword_ids,
                            const std::vector<int64_t>& vector_ids, int rrf_k);

// A hit numbered for the prompt and the citations: [number].
struct Passage {
    int number = 0;  // 1-based
    Hit hit;
};

// Takes hits in order while their approximate tokens fit in budget_tokens (a hit that
// does not fit is skipped, smaller later ones may still fit); numbers them from 1.
std::vector<Passage> assemble_context(const std::vector<Hit>& hits, int budget_tokens);
// "[1] name p.3\n<text>\n\n[2] ..." — the passages as a prompt block.
std::string format_context(const std::vector<Passage>& passages);

}  // namespace ragd
