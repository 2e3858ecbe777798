// retrieve: question -> ranked chunks -> numbered passages within a token budget.
//
// Hybrid mode runs keyword (Xapian BM25) and vector (FAISS) retrieval, each for
// Config::candidates hits, and fuses the two rankings by reciprocal rank fusion:
//   score(chunk) = sum over retrievers of 1 / (rrf_k + rank), rank starting at 1.
// Ties break by keyword rank, then by chunk id, so results are deterministic.
// Errors: throws ragd::Error (InvalidArgument for a bad query or k).
#pragma once

#include <cstdint>
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
    double score = 0;          // the ranking score of the mode (RRF, BM25 or cosine)
    int keyword_rank = 0;      // 1-based rank in the keyword list, 0 if absent
    int vector_rank = 0;       // 1-based rank in the vector list, 0 if absent
    double keyword_score = 0;  // BM25, if keyword_rank > 0
    double vector_score = 0;   // cosine, if vector_rank > 0
};

std::vector<Hit> search(Indexes& indexes, Store& store, const SearchRequest& req,
                        const Config& cfg);

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
