// generate: passages -> an answer with citations.
//
// Without a model, answers are extractive: the sentences of the retrieved passages that
// best match the question, each quoted with its exact place (document, page, byte span in
// the document text). The model-backed path (GGUF engine) comes later behind the same
// Answer shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "generate/runner.h"
#include "retrieve/retrieve.h"

namespace ragd {

struct Citation {
    int number = 0;  // the passage number [n]
    int64_t chunk_id = 0;
    int64_t document_id = 0;
    std::string document;  // file name
    std::string path;
    int page = 0;                // page where the quoted span starts
    int64_t start = 0, end = 0;  // byte span in the document text
    std::string quote;           // document text [start, end)
    double score = 0;            // relevance of the quote to the question
};

struct Answer {
    std::string text;                 // human-readable answer, citing [n]
    std::vector<Citation> citations;  // in the order they appear in text
};

// Picks up to max_sentences sentences from the passages by overlap with the question's
// content words (stemmed, stop words dropped, weighted by rarity across the passages),
// favouring better-ranked passages. The answer text joins them, each followed by its [n].
// With no passage or no overlapping sentence, the answer says nothing was found.
Answer extractive_answer(const std::string& question, const std::vector<Passage>& passages,
                         int max_sentences = 3);

// The chat messages of a grounded question: a system instruction to answer only from
// the numbered passages and to cite them as [n], then the passages and the question.
std::vector<ChatMessage> rag_messages(const std::string& question,
                                      const std::vector<Passage>& passages);

// Answers with the model: streams the text through on_text, and returns the citations
// the answer actually uses: for each [n] it contains, the sentence of passage n that best
// matches the answer sentence citing it (or the whole passage when none overlaps).
// References to passages that do not exist are left out of the citations. Passages are
// dropped from the end when the prompt would not leave room for max_tokens.
Answer model_answer(ModelRunner& runner, const std::string& question, std::vector<Passage> passages,
                    const GenerateOptions& options, const OnText& on_text = nullptr,
                    Generation* stats = nullptr);

// The passage numbers cited as [n], [n, m] or [n][m] in text, in order of appearance,
// each once.
std::vector<int> cited_numbers(const std::string& text);

// The extractive answer cut into pieces for streaming, one per cited sentence ("quote
// [n]"), such that the pieces joined are exactly a.text; the whole text as one piece
// when it is not made that way.
std::vector<std::string> answer_pieces(const Answer& a);

// A citation of a whole passage: its chunk's document, first page, span and text.
Citation passage_citation(const Passage& p);

// Splits text into sentences: returns [start, end) byte spans, trimmed of whitespace.
// Knows common abbreviations (e.g., Dr., mg., No.), decimals and list markers.
std::vector<std::pair<size_t, size_t>> split_sentences(const std::string& text);

}  // namespace ragd
