// api/json: JSON shapes shared by the CLI and the REST API.
#include "api/json.h"

namespace ragd {

using json = nlohmann::json;

json hit_json(const Hit& h) {
    const ChunkRow& c = h.chunk;
    json j = {{"chunk_id", c.id},
              {"document_id", c.document_id},
              {"document", c.document},
              {"path", c.path},
              {"collection", c.collection},
              {"page", c.page_start},
              {"page_end", c.page_end},
              {"start", c.start},
              {"end", c.end},
              {"score", h.score},
              {"text", c.text}};
    if (h.keyword_rank) j["keyword_rank"] = h.keyword_rank;
    if (h.vector_rank) j["vector_rank"] = h.vector_rank;
    if (h.reranked) {
        j["rerank_score"] = h.rerank_score;
        j["fused_rank"] = h.fused_rank;
    }
    return j;
}

json citation_json(const Citation& c) {
    return {{"number", c.number},     {"chunk_id", c.chunk_id}, {"document_id", c.document_id},
            {"document", c.document}, {"path", c.path},         {"page", c.page},
            {"start", c.start},       {"end", c.end},           {"score", c.score},
            {"text", c.quote}};
}

json document_json(const DocumentRow& d) {
    return {{"id", d.id},
            {"name", d.name},
            {"path", d.path},
            {"collection", d.collection},
            {"kind", d.kind},
            {"hash", d.hash},
            {"bytes", d.bytes},
            {"pages", d.n_pages},
            {"chunks", d.n_chunks},
            {"created_at", d.created_at},
            {"updated_at", d.updated_at}};
}

json job_json(const JobRow& j) {
    return {{"id", j.id},
            {"path", j.path},
            {"collection", j.collection},
            {"state", j.state},
            {"error", j.error.empty() ? json(nullptr) : json(j.error)},
            {"result", j.result.empty() ? json(nullptr) : json(j.result)},
            {"document_id", j.document_id > 0 ? json(j.document_id) : json(nullptr)},
            {"pages", j.pages},
            {"chunks", j.chunks},
            {"attempts", j.attempts},
            {"created_at", j.created_at},
            {"updated_at", j.updated_at}};
}

}  // namespace ragd
