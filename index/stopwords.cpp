// The English stop list shared by the keyword index, the embedder and extractive answers.
#include <algorithm>
#include <iterator>
#include <string_view>

#include "index/index.h"

namespace ragd {

namespace {

// Snowball's common English stop words, trimmed of words that carry meaning in contracts
// and manuals ("not", "no", "against", "before", "after"), plus contraction fragments.
// Sorted, for binary search.
const std::string_view kStopWords[] = {
    "a",          "about",     "above", "after", "against",  "am",         "an",     "and",
    "any",        "are",       "as",    "at",    "be",       "been",       "before", "being",
    "both",       "but",       "by",    "can",   "could",    "d",          "did",    "do",
    "does",       "doing",     "each",  "for",   "from",     "had",        "has",    "have",
    "having",     "he",        "her",   "here",  "hers",     "herself",    "him",    "himself",
    "his",        "how",       "i",     "if",    "in",       "into",       "is",     "it",
    "its",        "itself",    "ll",    "m",     "me",       "more",       "most",   "my",
    "myself",     "no",        "not",   "of",    "on",       "or",         "other",  "our",
    "ours",       "ourselves", "re",    "s",     "she",      "should",     "so",     "some",
    "such",       "t",         "than",  "that",  "the",      "their",      "theirs", "them",
    "themselves", "then",      "there", "these", "they",     "this",       "those",  "to",
    "too",        "ve",        "very",  "was",   "we",       "were",       "what",   "when",
    "where",      "which",     "while", "who",   "whom",     "why",        "will",   "with",
    "would",      "you",       "your",  "yours", "yourself", "yourselves",
};

}  // namespace

bool is_stop_word(std::string_view word) {
    return std::binary_search(std::begin(kStopWords), std::end(kStopWords), word);
}

}  // namespace ragd
