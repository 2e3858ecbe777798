// api/json: the JSON shapes shared by the CLI (--json) and the REST API, so that
// `ragd search --json` and `POST /v1/search` print exactly the same objects.
#pragma once

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "ingest/store.h"
#include "retrieve/retrieve.h"

namespace ragd {

// {chunk_id, document_id, document, path, collection, page, page_end, start, end, score,
//  text[, keyword_rank][, vector_rank][, rerank_score, fused_rank]}: score is the fused
//  score (the mode's), rerank_score the reranker's when one ordered the hits.
nlohmann::json hit_json(const Hit& h);
// {number, chunk_id, document_id, document, path, page, start, end, score, text}
nlohmann::json citation_json(const Citation& c);
// {id, name, path, collection, kind, hash, bytes, pages, chunks, created_at, updated_at}
nlohmann::json document_json(const DocumentRow& d);
// {id, path, collection, state, error, result, document_id, pages, chunks, attempts,
//  created_at, updated_at}; error/result/document_id are null when not set.
nlohmann::json job_json(const JobRow& j);

}  // namespace ragd
