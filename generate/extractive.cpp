// Extractive answers: the sentences of the passages that best match the question.
//
// Words are runs of Unicode word characters (Xapian's definition), lowercased; stop
// words are dropped and the rest stemmed with the English Snowball stemmer, the same
// stemmer the keyword index uses. A sentence scores the sum, over the distinct question
// stems it contains, of idf = log(1 + N / df) (N sentences in all passages, df of them
// containing the stem); then a bonus for better-ranked passages and a penalty for very
// short or very long sentences.

#include <xapian.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "generate/generate.h"

namespace ragd {

namespace {

const char kNotFound[] = "No answer found in the indexed documents.";

// Words that say what kind of answer is wanted, not what it is about; on top of the shared
// stop list (is_stop_word). Lowercase, before stemming.
bool is_question_word(const std::string& w) {
    static const std::unordered_set<std::string> words = {
        "after",   "again",  "all",   "also",    "because", "before",  "below",   "between",
        "during",  "either", "few",   "further", "just",    "may",     "might",   "must",
        "no",      "nor",    "not",   "now",     "off",     "once",    "only",    "out",
        "over",    "own",    "same",  "shall",   "please",  "tell",    "explain", "describe",
        "through", "under",  "until", "up",      "down",    "against", "whose",
    };
    return is_stop_word(w) || words.count(w) > 0;
}

// Distinct content stems of text[b, e), appended to *out in first-seen order; returns the
// number of words (stop words included).
int content_stems(const std::string& text, size_t b, size_t e, Xapian::Stem& stem,
                  std::vector<std::string>* out) {
    int words = 0;
    std::string word;
    auto flush = [&]() {
        if (word.empty()) return;
        words++;
        if (!is_question_word(word)) {
            std::string s = stem(word);
            if (!s.empty() && std::find(out->begin(), out->end(), s) == out->end()) {
                out->push_back(std::move(s));
            }
        }
        word.clear();
    };
    Xapian::Utf8Iterator it(text.data() + b, e - b), end;
    while (it != end) {
        unsigned ch = *it;
        if (Xapian::Unicode::is_wordchar(ch)) {
            Xapian::Unicode::append_utf8(word, Xapian::Unicode::tolower(ch));
            ++it;
            continue;
        }
        // Keep "1.5" and "10,000" whole: a '.' or ',' between digits.
        if ((ch == '.' || ch == ',') && !word.empty() &&
            std::isdigit(static_cast<unsigned char>(word.back()))) {
            Xapian::Utf8Iterator next = it;
            ++next;
            if (next != end && *next < 0x80 && std::isdigit(static_cast<int>(*next))) {
                word += static_cast<char>(ch);
                ++it;
                continue;
            }
        }
        flush();
        ++it;
    }
    flush();
    return words;
}

// The text with every whitespace run turned into one space, for the answer text.
std::string squeeze(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool space = false;
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

struct Sentence {
    size_t passage;     // index into passages
    size_t begin, end;  // span in the chunk text
    int words;
    std::vector<std::string> stems;
    double score = 0;
};

}  // namespace

Answer extractive_answer(const std::string& question, const std::vector<Passage>& passages,
                         int max_sentences) {
    if (max_sentences < 1) {
        throw Error(Error::Code::InvalidArgument, "max_sentences must be at least 1");
    }
    Answer ans;
    ans.text = kNotFound;

    Xapian::Stem stem("english");
    std::vector<std::string> q;
    content_stems(question, 0, question.size(), stem, &q);
    if (q.empty() || passages.empty()) return ans;

    std::vector<Sentence> sents;
    for (size_t p = 0; p < passages.size(); p++) {
        const std::string& text = passages[p].hit.chunk.text;
        for (auto [b, e] : split_sentences(text)) {
            Sentence s{p, b, e, 0, {}, 0};
            s.words = content_stems(text, b, e, stem, &s.stems);
            sents.push_back(std::move(s));
        }
    }
    if (sents.empty()) return ans;

    // Document frequency of the question stems over all sentences.
    std::unordered_map<std::string, int> df;
    for (const std::string& t : q) df[t] = 0;
    for (const Sentence& s : sents) {
        for (const std::string& t : s.stems) {
            auto it = df.find(t);
            if (it != df.end()) it->second++;
        }
    }
    const double n = static_cast<double>(sents.size());
    for (Sentence& s : sents) {
        double base = 0;
        for (const std::string& t : s.stems) {
            auto it = df.find(t);
            if (it != df.end()) base += std::log(1.0 + n / it->second);
        }
        if (base <= 0) continue;
        double score = base * (1.0 + 0.2 / (1.0 + static_cast<double>(s.passage)));
        if (s.words < 4) score *= 0.5;
        if (s.words > 40) score *= std::sqrt(40.0 / s.words);
        s.score = score;
    }

    // Best first; equal scores keep passage order, then position.
    std::vector<size_t> order;
    for (size_t i = 0; i < sents.size(); i++) {
        if (sents[i].score > 0) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (sents[a].score != sents[b].score) return sents[a].score > sents[b].score;
        return a < b;
    });

    // Take the best distinct sentences: chunks overlap, so the same document span can
    // appear in two passages, and boilerplate can repeat across documents.
    std::vector<size_t> chosen;
    for (size_t i : order) {
        if (chosen.size() >= static_cast<size_t>(max_sentences)) break;
        const Sentence& s = sents[i];
        const ChunkRow& c = passages[s.passage].hit.chunk;
        std::string_view txt(c.text.data() + s.begin, s.end - s.begin);
        int64_t ds = c.start + static_cast<int64_t>(s.begin);
        int64_t de = c.start + static_cast<int64_t>(s.end);
        bool dup = false;
        for (size_t j : chosen) {
            const Sentence& o = sents[j];
            const ChunkRow& oc = passages[o.passage].hit.chunk;
            std::string_view otxt(oc.text.data() + o.begin, o.end - o.begin);
            int64_t os = oc.start + static_cast<int64_t>(o.begin);
            int64_t oe = oc.start + static_cast<int64_t>(o.end);
            if (otxt == txt || (oc.document_id == c.document_id && os < de && ds < oe)) {
                dup = true;
                break;
            }
        }
        if (!dup) chosen.push_back(i);
    }
    if (chosen.empty()) return ans;
    std::sort(chosen.begin(), chosen.end(), [&](size_t a, size_t b) {
        int na = passages[sents[a].passage].number, nb = passages[sents[b].passage].number;
        if (na != nb) return na < nb;
        return a < b;  // same passage: by position
    });

    ans.text.clear();
    for (size_t i : chosen) {
        const Sentence& s = sents[i];
        const Passage& p = passages[s.passage];
        const ChunkRow& c = p.hit.chunk;
        Citation cit = passage_citation(p);
        int page = c.page_start +
                   static_cast<int>(std::count(c.text.begin(), c.text.begin() + s.begin, '\f'));
        if (c.page_end >= c.page_start) page = std::min(page, c.page_end);
        cit.page = page;
        cit.start = c.start + static_cast<int64_t>(s.begin);
        cit.end = c.start + static_cast<int64_t>(s.end);
        cit.quote = c.text.substr(s.begin, s.end - s.begin);
        cit.score = s.score;
        if (!ans.text.empty()) ans.text += ' ';
        ans.text += squeeze(cit.quote);
        ans.text += " [" + std::to_string(p.number) + "]";
        ans.citations.push_back(std::move(cit));
    }
    return ans;
}

std::vector<std::string> answer_pieces(const Answer& a) {
    std::vector<std::string> pieces;
    std::string joined;
    for (const Citation& c : a.citations) {
        std::string p = pieces.empty() ? "" : " ";
        p += squeeze(c.quote);
        p += " [" + std::to_string(c.number) + "]";
        joined += p;
        pieces.push_back(std::move(p));
    }
    if (pieces.empty() || joined != a.text) return {a.text};
    return pieces;
}

Citation passage_citation(const Passage& p) {
    const ChunkRow& c = p.hit.chunk;
    Citation cit;
    cit.number = p.number;
    cit.chunk_id = c.id;
    cit.document_id = c.document_id;
    cit.document = c.document;
    cit.path = c.path;
    cit.page = c.page_start;
    cit.start = c.start;
    cit.end = c.start + int64_t(c.text.size());
    cit.quote = c.text;
    cit.score = p.hit.score;
    return cit;
}

}  // namespace ragd
