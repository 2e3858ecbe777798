#include "retrieve/retrieve.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <unordered_map>

namespace ragd {

SearchMode parse_search_mode(const std::string& s) {
    if (s == "hybrid") return SearchMode::Hybrid;
    if (s == "keyword") return SearchMode::Keyword;
    if (s == "vector") return SearchMode::Vector;
    throw Error(Error::Code::InvalidArgument,
                "unknown search mode '" + s + "' (expected hybrid, keyword or vector)");
}

const char* search_mode_name(SearchMode m) {
    switch (m) {
        case SearchMode::Hybrid:
            return "hybrid";
        case SearchMode::Keyword:
            return "keyword";
        case SearchMode::Vector:
            return "vector";
    }
    return "hybrid";
}

// ---------------------------------------------------------------------------------------
// Fusion

std::vector<Fused> rrf_fuse(const std::vector<int64_t>& keyword_ids,
                            const std::vector<int64_t>& vector_ids, int rrf_k) {
    std::vector<Fused> out;
    out.reserve(keyword_ids.size() + vector_ids.size());
    std::unordered_map<int64_t, size_t> pos;  // chunk id -> index in out
    pos.reserve(out.capacity());

    // A retriever should not return an id twice; if it does, its best rank counts.
    for (size_t i = 0; i < keyword_ids.size(); i++) {
        auto [it, added] = pos.emplace(keyword_ids[i], out.size());
        if (added) out.push_back(Fused{keyword_ids[i], 0, static_cast<int>(i) + 1, 0});
    }
    for (size_t i = 0; i < vector_ids.size(); i++) {
        auto [it, added] = pos.emplace(vector_ids[i], out.size());
        if (added) out.push_back(Fused{vector_ids[i], 0, 0, 0});
        Fused& f = out[it->second];
        if (f.vector_rank == 0) f.vector_rank = static_cast<int>(i) + 1;
    }
    // Always keyword term first, then vector term, so equal rank pairs give equal doubles.
    for (Fused& f : out) {
        double s = 0;
        if (f.keyword_rank > 0) s += 1.0 / (rrf_k + f.keyword_rank);
        if (f.vector_rank > 0) s += 1.0 / (rrf_k + f.vector_rank);
        f.score = s;
    }
    std::sort(out.begin(), out.end(), [](const Fused& a, const Fused& b) {
        if (a.score != b.score) return a.score > b.score;
        int ka = a.keyword_rank > 0 ? a.keyword_rank : INT_MAX;
        int kb = b.keyword_rank > 0 ? b.keyword_rank : INT_MAX;
        if (ka != kb) return ka < kb;
        return a.chunk_id < b.chunk_id;
    });
    return out;
}

// ---------------------------------------------------------------------------------------
// Search

namespace {

bool blank(const std::string& s) {
    for (unsigned char c : s) {
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') {
            return false;
        }
    }
    return true;
}

bool passes(const ChunkRow& c, const IndexFilter& f) {
    if (!f.collection.empty() && c.collection != f.collection) return false;
    if (f.document_id != 0 && c.document_id != f.document_id) return false;
    return true;
}

// Rescores HITS with the reranker, orders them by its score (ties: fused order) and
// keeps the best k.
void rerank(const Reranker& reranker, const std::string& query, int k, std::vector<Hit>* hits) {
    std::vector<std::string> texts;
    texts.reserve(hits->size());
    for (const Hit& h : *hits) texts.push_back(h.chunk.text);
    std::vector<float> scores = reranker.score(query, texts);
    if (scores.size() != hits->size())
        throw Error(Error::Code::Internal, "reranker " + reranker.name() + " returned " +
                                               std::to_string(scores.size()) + " scores for " +
                                               std::to_string(hits->size()) + " passages");
    for (size_t i = 0; i < hits->size(); i++) {
        (*hits)[i].reranked = true;
        // A NaN would break the ordering: it ranks last.
        (*hits)[i].rerank_score = std::isnan(scores[i]) ? -HUGE_VAL : double(scores[i]);
    }
    std::stable_sort(hits->begin(), hits->end(),
                     [](const Hit& a, const Hit& b) { return a.rerank_score > b.rerank_score; });
    if (hits->size() > static_cast<size_t>(k)) hits->resize(static_cast<size_t>(k));
}

}  // namespace

std::vector<Hit> search(Indexes& indexes, Store& store, const SearchRequest& req, const Config& cfg,
                        const Reranker* reranker) {
    if (req.k < 1 || req.k > 1000) {
        throw Error(Error::Code::InvalidArgument,
                    "k must be between 1 and 1000, got " + std::to_string(req.k));
    }
    if (blank(req.query)) throw Error(Error::Code::InvalidArgument, "empty query");

    // With a reranker, `want` fused hits are loaded and rescored, then cut to k.
    const int want = reranker ? std::max(req.k, std::min(cfg.rerank_top_n, 1000)) : req.k;
    const int n = std::max(cfg.candidates, want);
    std::vector<KeywordHit> kw;
    std::vector<VectorHit> vec;
    if (req.mode != SearchMode::Vector)
        kw = indexes.keyword_search(req.query, n, req.filter, store);
    if (req.mode != SearchMode::Keyword)
        vec = indexes.vector_search(req.query, n, req.filter, store);

    // The ranking: fused for hybrid, the retriever's own order otherwise (rrf_fuse with
    // one empty list keeps that order and fills the ranks).
    std::vector<int64_t> kw_ids, vec_ids;
    kw_ids.reserve(kw.size());
    vec_ids.reserve(vec.size());
    std::unordered_map<int64_t, double> kw_score, vec_score;
    for (const KeywordHit& h : kw) {
        kw_ids.push_back(h.chunk_id);
        kw_score.emplace(h.chunk_id, h.score);
    }
    for (const VectorHit& h : vec) {
        vec_ids.push_back(h.chunk_id);
        vec_score.emplace(h.chunk_id, h.score);
    }
    std::vector<Fused> ranked = rrf_fuse(kw_ids, vec_ids, cfg.rrf_k);

    // Load rows best first, in batches of what is still missing: a chunk deleted since the
    // index was read simply drops out and the next candidate takes its place.
    std::vector<Hit> hits;
    hits.reserve(static_cast<size_t>(want));
    size_t next = 0;
    while (hits.size() < static_cast<size_t>(want) && next < ranked.size()) {
        size_t missing = static_cast<size_t>(want) - hits.size();
        size_t end = std::min(ranked.size(), next + missing);
        std::vector<int64_t> ids;
        ids.reserve(end - next);
        for (size_t i = next; i < end; i++) ids.push_back(ranked[i].chunk_id);
        std::vector<ChunkRow> rows = store.chunks(ids);
        std::unordered_map<int64_t, size_t> row_of;
        for (size_t i = 0; i < rows.size(); i++) row_of.emplace(rows[i].id, i);
        for (size_t i = next; i < end; i++) {
            const Fused& f = ranked[i];
            auto it = row_of.find(f.chunk_id);
            if (it == row_of.end()) continue;
            ChunkRow& row = rows[it->second];
            if (!passes(row, req.filter)) continue;
            Hit h;
            h.chunk = std::move(row);
            h.keyword_rank = f.keyword_rank;
            h.vector_rank = f.vector_rank;
            if (f.keyword_rank > 0) h.keyword_score = kw_score[f.chunk_id];
            if (f.vector_rank > 0) h.vector_score = vec_score[f.chunk_id];
            switch (req.mode) {
                case SearchMode::Hybrid:
                    h.score = f.score;
                    break;
                case SearchMode::Keyword:
                    h.score = h.keyword_score;
                    break;
                case SearchMode::Vector:
                    h.score = h.vector_score;
                    break;
            }
            h.fused_rank = static_cast<int>(hits.size()) + 1;
            hits.push_back(std::move(h));
        }
        next = end;
    }
    if (reranker && !hits.empty()) rerank(*reranker, req.query, req.k, &hits);
    return hits;
}

// ---------------------------------------------------------------------------------------
// Context

std::vector<Passage> assemble_context(const std::vector<Hit>& hits, int budget_tokens) {
    std::vector<Passage> out;
    int used = 0;
    for (const Hit& h : hits) {
        int t = approx_tokens(h.chunk.text);
        if (t > budget_tokens - used) continue;
        used += t;
        Passage p;
        p.number = static_cast<int>(out.size()) + 1;
        p.hit = h;
        out.push_back(std::move(p));
    }
    return out;
}

std::string format_context(const std::vector<Passage>& passages) {
    std::string out;
    for (const Passage& p : passages) {
        const ChunkRow& c = p.hit.chunk;
        out += '[';
        out += std::to_string(p.number);
        out += "] ";
        out += c.document;
        out += " p.";
        out += std::to_string(c.page_start);
        if (c.page_end > c.page_start) {
            out += '-';
            out += std::to_string(c.page_end);
        }
        out += '\n';
        out += c.text;
        out += "\n\n";
    }
    return out;
}

}  // namespace ragd
