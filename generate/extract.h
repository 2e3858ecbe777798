// generate/extract: structured extraction. A document's passages (all of it when it fits
// the context budget, else the chunks that retrieval ranks best for the schema's field
// names and the instructions), a prompt with the schema, generation constrained by the
// schema (json_schema.h), and evidence: for each filled field, the passages' spans that
// support its value.
//
// Evidence maps the JSON pointer of every non-null leaf of data ("/parties/0",
// "/notice_days") to a list of citations {number, chunk_id, document_id, document, path,
// page, start, end, quote, match}. match says how the span was found: "exact" (the value's
// text, case and whitespace aside), "normalized" (a date or number in another written
// form: "1 March 2024", "March 1, 2024", "01/03/2024" for 2024-03-01; "1,000" for 1000) or
// "overlap" (the sentence sharing most content words with a string value, at least half
// of its words). A field with no support gets an empty list, never a guess. Booleans are
// never located (empty list).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "generate/chat.h"
#include "generate/runner.h"
#include "retrieve/retrieve.h"

namespace ragd {

// The passages of a stored document: every chunk in order when their tokens fit
// budget_tokens, else the best chunks of that document for a query made of the schema's
// property names, titles and descriptions plus the instructions, in document order.
// Throws Error(NotFound) for an unknown document.
std::vector<Passage> document_passages(Indexes& indexes, Store& store, int64_t document_id,
                                       const nlohmann::ordered_json& schema,
                                       const std::string& instructions, const Config& cfg,
                                       int budget_tokens);

// Passages of raw text (document_id 0, document "text", page 1): paragraphs grouped into
// pieces of about 1,000 bytes, in order, while they fit budget_tokens (about 4 bytes a
// token); text beyond the budget is left out.
std::vector<Passage> text_passages(const std::string& text, int budget_tokens);

// The prompt: a system message with the task and the schema, a user message with the
// instructions and the numbered passages.
std::vector<ChatMessage> extraction_messages(const nlohmann::ordered_json& schema,
                                             const std::string& instructions,
                                             const std::vector<Passage>& passages);

// {pointer: [citation...]} for every non-null leaf of data (see above).
nlohmann::json extraction_evidence(const nlohmann::json& data,
                                   const std::vector<Passage>& passages);

struct Extraction {
    nlohmann::ordered_json data;
    nlohmann::json evidence;
    Generation stats;
};

// Generates under the schema (options.grammar is set from it; temperature etc. as given)
// and builds the evidence. Passages are dropped from the end while the prompt, counted
// with the model's tokenizer, leaves no room for options.max_tokens in the context.
// Throws Error(InvalidArgument) for a bad schema, or a prompt that does not fit even
// without passages.
Extraction extract(ModelRunner& runner, const nlohmann::ordered_json& schema,
                   const std::string& instructions, const std::vector<Passage>& passages,
                   GenerateOptions options);

}  // namespace ragd
