// Sentence splitting for extractive answers and citations.
//
// A first pass collects cut positions (sentence boundaries) in one scan over the bytes;
// a second pass turns the pieces between cuts into trimmed spans. Cuts only ever fall on
// ASCII bytes or just after them, so spans never split a UTF-8 sequence.
//
// Boundaries:
//   - '.', '!', '?', '…' (runs of them, then closing quotes or brackets) followed by
//     whitespace or the end of the text; '。', '！', '？' anywhere.
//     A single '.' is not a boundary after a known abbreviation (Dr., e.g., ...), a single
//     capital initial (J.), or a list number at the start of a line ("12." "4.2.").
//     Decimals (1.5) and inner dots (e.g.) never are, as no whitespace follows them.
//   - '\f' (page separator), a blank line, a line ending in ':'.
//   - the start of a line that opens a bullet item ("- ", "* ", "• "), a Markdown
//     heading ("# "), or a numbered clause ("12.3 The", "(a) The") ; the end of a heading
//     line, and of a short title-like line followed by a capitalised line.
// Spans are trimmed of whitespace, and of a leading bullet or '#' marker; spans without
// a letter or digit are dropped.

#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "generate/generate.h"

namespace ragd {

namespace {

constexpr size_t npos = std::string::npos;

// Decodes the UTF-8 sequence at t[i]; invalid bytes decode as U+FFFD of length 1.
unsigned decode(std::string_view t, size_t i, size_t* len) {
    unsigned char c = t[i];
    *len = 1;
    if (c < 0x80) return c;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (extra < 0 || c >= 0xF8 || i + extra >= t.size()) return 0xFFFD;
    unsigned cp = c & (0x3F >> extra);
    for (int k = 1; k <= extra; k++) {
        unsigned char d = t[i + k];
        if ((d & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (d & 0x3F);
    }
    *len = 1 + extra;
    return cp;
}

bool ascii_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Length of the whitespace character at t[i] (ASCII, no-break and typographic spaces),
// 0 if there is none.
size_t space_len(std::string_view t, size_t i) {
    if (ascii_space(t[i])) return 1;
    if (static_cast<unsigned char>(t[i]) < 0x80) return 0;
    size_t len;
    unsigned cp = decode(t, i, &len);
    if (cp == 0xA0 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x3000) {
        return len;
    }
    return 0;
}

bool is_space_at(std::string_view t, size_t i) {
    return i >= t.size() || space_len(t, i) > 0;
}

// A letter or digit (any script): not ASCII punctuation, not Latin-1 symbols, not general
// punctuation, symbols, arrows, box drawing, CJK punctuation.
bool is_alnum_cp(unsigned cp) {
    if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) != 0;
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7) return false;
    if (cp >= 0x2000 && cp <= 0x2BFF) return false;
    if (cp >= 0x3000 && cp <= 0x303F) return false;
    if (cp >= 0xFE30 && cp <= 0xFE4F) return false;
    if (cp >= 0xFF00 && cp <= 0xFF0F) return false;
    if (cp == 0xFFFD) return false;
    return true;
}

// Sentence terminators. *fullwidth: a CJK one, a boundary without a following space.
size_t terminator_len(std::string_view t, size_t i, bool* fullwidth) {
    unsigned char c = t[i];
    *fullwidth = false;
    if (c == '.' || c == '!' || c == '?') return 1;
    if (c < 0x80) return 0;
    size_t len;
    unsigned cp = decode(t, i, &len);
    if (cp == 0x2026) return len;  // …
    if (cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F) {
        *fullwidth = true;
        return len;
    }
    return 0;
}

// Closing quotes and brackets that stay with the sentence they end.
size_t closer_len(std::string_view t, size_t i) {
    unsigned char c = t[i];
    if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '}') return 1;
    if (c < 0x80) return 0;
    size_t len;
    unsigned cp = decode(t, i, &len);
    if (cp == 0x201D || cp == 0x2019 || cp == 0xBB || cp == 0x300D || cp == 0x300F) return len;
    return 0;
}

// A bullet marker at t[i] followed by whitespace: its length, else 0.
size_t bullet_len(std::string_view t, size_t i) {
    size_t len = 0;
    unsigned char c = t[i];
    if (c == '-' || c == '*' || c == '+') {
        len = 1;
    } else if (c >= 0x80) {
        unsigned cp = decode(t, i, &len);
        // • ‣ ◦ ▪ ▫ ● ○ – —
        if (!(cp == 0x2022 || cp == 0x2023 || cp == 0x25E6 || cp == 0x25AA || cp == 0x25AB ||
              cp == 0x25CF || cp == 0x25CB || cp == 0x2013 || cp == 0x2014)) {
            return 0;
        }
    } else {
        return 0;
    }
    return i + len < t.size() && space_len(t, i + len) > 0 ? len : 0;
}

// A Markdown heading marker ("#" to "######" then a space): its length, else 0.
size_t heading_len(std::string_view t, size_t i) {
    size_t j = i;
    while (j < t.size() && t[j] == '#' && j - i < 6) j++;
    if (j == i || j >= t.size() || t[j] != ' ') return 0;
    return j - i;
}

// A numbered clause or list marker at t[i]: "12", "12.", "12.3", "4.2.1.", "(a)", "(iv)",
// "a)", "3)", followed by a space. Returns its length, else 0.
size_t number_marker_len(std::string_view t, size_t i) {
    size_t n = t.size(), j = i;
    if (j < n && t[j] == '(') {
        j++;
        size_t k = j;
        while (k < n && k - j < 4 && std::isalnum(static_cast<unsigned char>(t[k]))) k++;
        if (k == j || k >= n || t[k] != ')') return 0;
        j = k + 1;
    } else if (j < n && std::isdigit(static_cast<unsigned char>(t[j]))) {
        while (j < n && (std::isdigit(static_cast<unsigned char>(t[j])) || t[j] == '.')) j++;
        if (j < n && t[j] == ')') j++;
    } else {
        size_t k = j;
        while (k < n && k - j < 3 && std::isalpha(static_cast<unsigned char>(t[k]))) k++;
        if (k == j || k >= n || t[k] != ')') return 0;
        j = k + 1;
    }
    if (j >= n || (t[j] != ' ' && t[j] != '\t')) return 0;
    return j - i;
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

template <size_t N>
bool in_list(std::string_view w, const std::string_view (&list)[N]) {
    for (std::string_view x : list) {
        if (w == x) return true;
    }
    return false;
}

// Abbreviations that never end a sentence: titles and "for example"-like markers.
constexpr std::string_view kNeverEnd[] = {"dr",  "mr",     "mrs",  "ms", "st",  "vs",  "e.g",
                                          "i.e", "approx", "prof", "cf", "viz", "resp"};
// Abbreviations that end a sentence only when no number follows ("No. 5", "p. 12").
constexpr std::string_view kBeforeNumber[] = {"no", "nos", "fig", "figs", "art", "sec", "vol",
                                              "p",  "pp",  "ch",  "para", "ref", "eq"};
// Abbreviations that often end a sentence: a boundary only when a capital follows.
constexpr std::string_view kMayEnd[] = {"etc", "inc", "ltd", "co",  "corp", "llc",
                                        "mg",  "kg",  "ml",  "mcg", "g",    "a.m",
                                        "p.m", "jr",  "sr",  "al",  "dept"};

bool is_roman(std::string_view w) {
    if (w.empty() || w.size() > 4) return false;
    for (char c : w) {
        if (c != 'i' && c != 'v' && c != 'x') return false;
    }
    return true;
}

// Is the '.' at t[dot] (alone, closers up to j) the end of a sentence?
bool dot_ends_sentence(std::string_view t, size_t dot, size_t j, size_t line_start) {
    size_t ws = dot;
    while (ws > 0 && !ascii_space(t[ws - 1])) ws--;
    size_t wb = ws;  // skip opening brackets and quotes
    while (wb < dot && (t[wb] == '(' || t[wb] == '[' || t[wb] == '"' || t[wb] == '\'')) wb++;
    std::string_view word = t.substr(wb, dot - wb);
    if (word.empty()) return true;

    bool at_line_start = true;
    for (size_t k = line_start; k < ws; k++) {
        if (!ascii_space(t[k])) {
            at_line_start = false;
            break;
        }
    }
    std::string w = lower_ascii(word);
    // "12." "4.2." "a." "iv." opening a line: a list marker, not an ending.
    if (at_line_start && wb == ws) {
        bool numeric = true;
        for (char c : w)
            numeric = numeric && (std::isdigit(static_cast<unsigned char>(c)) || c == '.');
        if (numeric || w.size() == 1 || is_roman(w)) return false;
    }
    if (word.size() == 1 && std::isupper(static_cast<unsigned char>(word[0]))) return false;

    size_t nx = j;
    while (nx < t.size() && space_len(t, nx) > 0) nx += space_len(t, nx);
    bool next_upper = nx < t.size() && std::isupper(static_cast<unsigned char>(t[nx]));
    bool next_digit = nx < t.size() && std::isdigit(static_cast<unsigned char>(t[nx]));

    if (in_list(w, kNeverEnd)) return false;
    if (in_list(w, kBeforeNumber)) return !next_digit;
    if (in_list(w, kMayEnd)) return next_upper;
    // Dotted initials: "U.S", "a.b.c".
    if (w.size() >= 3 && w.size() % 2 == 1) {
        bool dotted = true;
        for (size_t k = 0; k < w.size(); k++) {
            dotted = dotted && (k % 2 == 1 ? w[k] == '.'
                                           : std::isalpha(static_cast<unsigned char>(w[k])) != 0);
        }
        if (dotted) return next_upper;
    }
    return true;
}

// Words a title-like line does not end with: a line ending so is a wrapped sentence.
constexpr std::string_view kConnectors[] = {
    "the", "a",    "an",   "of",   "and",  "or",    "to",  "in",    "on",  "for",  "with",
    "by",  "at",   "as",   "from", "is",   "are",   "was", "were",  "be",  "that", "which",
    "per", "than", "into", "not",  "this", "these", "its", "their", "his", "her",  "our"};

struct Splitter {
    std::string_view t;
    std::vector<size_t> cuts;
    size_t sent_first = npos;  // first non-space byte since the last cut

    void cut(size_t p) {
        if (cuts.empty() || cuts.back() < p) cuts.push_back(p);
        sent_first = npos;
    }

    // Handles the '\n' at i ending the line [line_start, i).
    void newline(size_t line_start, size_t i) {
        size_t n = t.size();
        size_t a = line_start;  // first non-space of the line
        while (a < i && ascii_space(t[a])) a++;
        size_t z = i;  // one past the last non-space
        while (z > a && ascii_space(t[z - 1])) z--;
        size_t nb = i + 1;  // first non-space of the next line
        while (nb < n && (t[nb] == ' ' || t[nb] == '\t' || t[nb] == '\r')) nb++;

        if (nb < n && t[nb] == '\f') {  // a page break: see run()
            if (a == i || ends_before(i)) cut(i);
            return;
        }
        if (a == i || nb >= n || t[nb] == '\n') {  // blank line
            cut(i);
            return;
        }
        if (heading_len(t, a) > 0 || t[z - 1] == ':') {
            cut(i);
            return;
        }
        if (bullet_len(t, nb) > 0 || heading_len(t, nb) > 0) {
            cut(i + 1);
            return;
        }
        size_t m = number_marker_len(t, nb);
        if (m > 0) {
            size_t w = nb + m;
            while (w < n && (t[w] == ' ' || t[w] == '\t')) w++;
            bool upper = w < n && std::isupper(static_cast<unsigned char>(t[w]));
            if (upper || t[z - 1] == ';') {
                cut(i + 1);
                return;
            }
        }
        if (sent_first == a && title_like(a, z) &&
            (std::isupper(static_cast<unsigned char>(t[nb])) ||
             std::isdigit(static_cast<unsigned char>(t[nb])))) {
            cut(i);
        }
    }

    // True when the last non-space byte before i ends a sentence (., !, ?, :, ;, possibly
    // followed by closing quotes or brackets), or there is no text before i.
    bool ends_before(size_t i) const {
        size_t k = i;
        while (k > 0 && ascii_space(t[k - 1])) k--;
        while (k > 0 && (t[k - 1] == '"' || t[k - 1] == '\'' || t[k - 1] == ')' || t[k - 1] == ']'))
            k--;
        if (k == 0) return true;
        char c = t[k - 1];
        return c == '.' || c == '!' || c == '?' || c == ':' || c == ';';
    }

    // A short line that starts with a capital or digit, has at most 8 words and does not
    // end like a wrapped sentence: a title.
    bool title_like(size_t a, size_t z) const {
        if (z - a > 50) return false;
        unsigned char first = t[a];
        if (!std::isupper(first) && !std::isdigit(first)) return false;
        unsigned char last = t[z - 1];
        if (!std::isalnum(last) && last != ')' && last < 0x80) return false;
        int words = 1;
        for (size_t k = a; k < z; k++) {
            if (ascii_space(t[k]) && !ascii_space(t[k + 1])) words++;
        }
        if (words > 8) return false;
        size_t lw = z;
        while (lw > a && !ascii_space(t[lw - 1])) lw--;
        return !in_list(lower_ascii(t.substr(lw, z - lw)), kConnectors);
    }

    void run() {
        size_t n = t.size();
        size_t line_start = 0;
        size_t i = 0;
        while (i < n) {
            unsigned char c = t[i];
            if (sent_first == npos && !ascii_space(c)) sent_first = i;
            if (c == '\f') {
                // A page break ends a sentence only if the text before it does: "She does
                // not\n\fmeet the criteria" is one sentence across two pages.
                if (ends_before(i)) {
                    cut(i);
                    cut(i + 1);
                }
                line_start = ++i;
                continue;
            }
            if (c == '\n') {
                newline(line_start, i);
                line_start = ++i;
                continue;
            }
            bool fullwidth;
            size_t len = terminator_len(t, i, &fullwidth);
            if (len == 0) {
                i++;
                continue;
            }
            size_t j = i + len;
            int count = 1;
            bool fw;
            while (j < n && (len = terminator_len(t, j, &fw)) > 0) {
                fullwidth = fullwidth || fw;
                j += len;
                count++;
            }
            while (j < n && (len = closer_len(t, j)) > 0) j += len;
            if (fullwidth || is_space_at(t, j)) {
                bool single_dot = count == 1 && t[i] == '.';
                if (!single_dot || dot_ends_sentence(t, i, j, line_start)) cut(j);
            }
            i = j;
        }
    }
};

// Trims whitespace and a leading bullet or heading marker; false if nothing with a letter
// or digit is left.
bool trim(std::string_view t, size_t* s, size_t* e) {
    size_t a = *s, z = *e;
    std::string_view u = t.substr(0, z);  // markers must be followed by a space inside
    for (;;) {
        size_t len;
        while (a < z && (len = space_len(u, a)) > 0) a += len;
        if (a < z && (len = bullet_len(u, a)) > 0) {
            a += len;
        } else if (a < z && (len = heading_len(u, a)) > 0) {
            a += len;
        } else {
            break;
        }
    }
    while (z > a) {
        // step back over one whitespace character (ASCII or multi-byte)
        size_t k = z - 1;
        while (k > a && (static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) k--;
        size_t len = space_len(t, k);
        if (len == 0 || k + len != z) break;
        z = k;
    }
    bool content = false;
    for (size_t k = a; k < z && !content;) {
        size_t len;
        content = is_alnum_cp(decode(t, k, &len));
        k += len;
    }
    *s = a;
    *e = z;
    return content;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> split_sentences(const std::string& text) {
    Splitter sp;
    sp.t = text;
    sp.run();
    std::vector<std::pair<size_t, size_t>> out;
    size_t prev = 0;
    sp.cuts.push_back(text.size());
    for (size_t c : sp.cuts) {
        size_t s = prev, e = c;
        prev = c;
        if (s >= e) continue;
        if (trim(text, &s, &e)) out.emplace_back(s, e);
    }
    return out;
}

}  // namespace ragd
