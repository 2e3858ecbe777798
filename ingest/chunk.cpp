// chunk: document text -> chunks of about target_tokens tokens.
//
// One pass over the text, chunk by chunk. From a chunk's start, a walk takes whole tokens
// (counted as approx_tokens counts them) until the target or the byte limit is reached,
// noting the boundary after each token: paragraph (a blank line, the page separator "\n\f",
// the end of the text), sentence, line, word, or none (punctuation glued to a word). The
// chunk ends at the last boundary of the strongest kind that uses at least half of the room
// left after the overlap. The next chunk starts at the strongest boundary about
// overlap_tokens before that end. A run of word bytes longer than a whole chunk (a 20 MB
// line without spaces) is cut at a UTF-8 character boundary. Every chunk ends past the previous one
// and every walk covers at most a chunk and its overlap, so the whole is linear in the size of the
// text.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdlib>

#include "ingest/ingest.h"

namespace ragd {

namespace {

// Boundary after a token, weakest first.
enum Level : uint8_t { kCut, kToken, kWord, kLine, kSentence, kParagraph };

constexpr int kBytesPerToken = 6;          // approx_tokens: a long word counts one per 6 bytes
constexpr int64_t kMaxBytesPerToken = 32;  // chunk byte limit = target * this

bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Bytes approx_tokens counts as part of a word.
bool is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

struct Tok {
    size_t start, end;  // bytes [start, end) of the token in the text
    int cum;            // tokens from the walk's start through this one
    Level after;        // boundary after the token
};

class Chunker {
  public:
    Chunker(const std::string& text, int target, int overlap)
        : t_(text),
          n_(text.size()),
          target_(target),
          overlap_(overlap),
          max_bytes_(static_cast<size_t>(target * kMaxBytesPerToken)) {}

    // Chunk spans [start, end), in order.
    std::vector<std::pair<size_t, size_t>> run() {
        std::vector<std::pair<size_t, size_t>> spans;
        size_t s = skip_space(0), prev_end = 0;
        while (s < n_) {
            walk(s);
            int j = choose_end(prev_end);
            if (j < 0) {
                // Starting in the overlap left no room to move past the previous chunk (a
                // huge word or gap follows it): start after it instead.
                assert(s < prev_end);
                s = skip_space(prev_end);
                continue;
            }
            size_t e = toks_[j].end;
            spans.emplace_back(s, e);
            prev_end = e;
            s = next_start(j);
        }
        return spans;
    }

  private:
    const std::string& t_;
    const size_t n_;
    const int target_, overlap_;
    const size_t max_bytes_;
    std::vector<Tok> toks_;  // the current walk

    unsigned char at(size_t i) const { return static_cast<unsigned char>(t_[i]); }

    size_t skip_space(size_t i) const {
        while (i < n_ && is_space(at(i))) ++i;
        return i;
    }

    // True if the token ending at e ends a sentence: . ! ? possibly followed by closing
    // quotes or brackets (the caller checks that whitespace follows).
    bool ends_sentence(size_t e) const {
        for (size_t i = e; i > 0 && e - i < 4; --i) {
            unsigned char c = at(i - 1);
            if (c == '.' || c == '!' || c == '?') return true;
            if (c != '"' && c != '\'' && c != ')' && c != ']') return false;
        }
        return false;
    }

    // Fills toks_ with the tokens that fit in one chunk starting at s (a non-space byte):
    // at most target_ tokens and max_bytes_ bytes. Takes at least one token, cutting a run
    // of word bytes that is too long for a whole chunk (the last token is then kCut).
    void walk(size_t s) {
        toks_.clear();
        const size_t byte_end = std::min(n_, s + max_bytes_);
        size_t p = s;
        int cum = 0;
        while (p < byte_end && cum < target_) {
            size_t e;
            if (is_word(at(p))) {
                // A run of len bytes counts 1 + (len - 1) / 6 tokens: it fits in the room
                // left if len <= 6 * room. Scan no further than one byte past that.
                size_t lim =
                    std::min(static_cast<size_t>(target_ - cum) * kBytesPerToken, byte_end - p);
                e = p;
                while (e < n_ && e - p <= lim && is_word(at(e))) ++e;
                if (e - p > lim) {
                    if (!toks_.empty()) break;  // end before it; a later chunk cuts it
                    e = p + lim;
                    while (e > p && (at(e) & 0xC0) == 0x80) --e;  // not inside a character
                    if (e == p) {
                        e = p + 1;
                        while (e < n_ && (at(e) & 0xC0) == 0x80) ++e;
                    }
                    toks_.push_back({p, e, approx_tokens(t_.data() + p, e - p), kCut});
                    return;
                }
                cum += 1 + static_cast<int>((e - p - 1) / kBytesPerToken);
            } else {
                e = p + 1;  // punctuation: a token per byte
                cum += 1;
            }
            // The gap after the token decides the boundary. Scan no further than the chunk
            // could reach: a token after that would not fit anyway.
            size_t q = e;
            int newlines = 0;
            bool page_break = false;
            while (q < n_ && q < byte_end && is_space(at(q))) {
                newlines += at(q) == '\n';
                page_break |= at(q) == '\f';
                ++q;
            }
            Level after;
            // A page break is a paragraph break only where a sentence ends before it; else
            // the sentence runs on to the next page, and the break is a line break.
            if (q >= n_ || (newlines >= 2 && !page_break) || (page_break && ends_sentence(e)))
                after = kParagraph;
            else if (page_break)
                after = kLine;
            else if (q == e)
                after = kToken;
            else if (ends_sentence(e))
                after = kSentence;
            else if (newlines == 1)
                after = kLine;
            else
                after = kWord;
            toks_.push_back({p, e, cum, after});
            p = q;
        }
    }

    // The index of the token the chunk ends with: the last one after the strongest boundary
    // that fills at least half of the room the chunk has past prev_end (the overlap); failing
    // that, the last token if it is past prev_end; else -1.
    int choose_end(size_t prev_end) const {
        const int last = static_cast<int>(toks_.size()) - 1;
        if (toks_[last].end <= prev_end) return -1;
        int base = 0;  // tokens shared with the previous chunk
        for (int j = 0; j < last && toks_[j].end <= prev_end; ++j) base = toks_[j].cum;
        const int min_fill = base + (target_ - base) / 2;
        for (int level = kParagraph; level > kCut; --level) {
            for (int j = last; j >= 0; --j) {
                if (toks_[j].end <= prev_end || toks_[j].cum < min_fill) break;
                if (toks_[j].after >= level) return j;
            }
        }
        return last;
    }

    // Where the chunk after the one ending with token j starts: the start of a token i
    // (0 < i <= j) after a boundary as strong as possible, with tokens i..j about overlap_.
    size_t next_start(int j) const {
        const size_t no_overlap = skip_space(toks_[j].end);
        if (overlap_ == 0) return no_overlap;
        const int lo = std::max(1, overlap_ / 2), hi = overlap_ + overlap_ / 2;
        const int cum_end = toks_[j].cum;
        const Level wanted[] = {kSentence, kWord, kToken};
        for (Level level : wanted) {
            int best = -1, best_dist = 0;
            for (int i = j; i >= 1; --i) {
                int ov = cum_end - toks_[i - 1].cum;
                if (ov > hi) break;
                if (ov < lo || toks_[i - 1].after < level) continue;
                int dist = std::abs(ov - overlap_);
                if (best < 0 || dist < best_dist) best = i, best_dist = dist;
            }
            if (best >= 0) return toks_[best].start;
        }
        return no_overlap;
    }
};

}  // namespace

std::string join_pages(const std::vector<std::string>& pages) {
    size_t size = 0;
    for (const std::string& p : pages) size += p.size() + 2;
    std::string text;
    text.reserve(size);
    for (size_t i = 0; i < pages.size(); ++i) {
        if (i > 0) text += "\n\f";
        text += pages[i];
    }
    return text;
}

std::vector<NewChunk> chunk_document(const std::vector<std::string>& pages, int target_tokens,
                                     int overlap_tokens) {
    if (target_tokens < 16 || target_tokens > (1 << 20))
        throw Error(Error::Code::InvalidArgument,
                    "chunk size must be between 16 and 1048576 tokens (got " +
                        std::to_string(target_tokens) + ")");
    if (overlap_tokens < 0 || overlap_tokens * 2 >= target_tokens)
        throw Error(Error::Code::InvalidArgument,
                    "chunk overlap must be at least 0 and less than half the chunk size (got " +
                        std::to_string(overlap_tokens) + " for " + std::to_string(target_tokens) +
                        ")");
    const std::string text = join_pages(pages);
    std::vector<int64_t> page_starts;  // byte offset of each page in text
    int64_t off = 0;
    for (const std::string& p : pages) {
        page_starts.push_back(off);
        off += static_cast<int64_t>(p.size()) + 2;
    }
    auto page_of = [&](size_t pos) {  // 1-based page holding byte pos
        return static_cast<int>(
            std::upper_bound(page_starts.begin(), page_starts.end(), static_cast<int64_t>(pos)) -
            page_starts.begin());
    };

    std::vector<std::pair<size_t, size_t>> spans =
        Chunker(text, target_tokens, overlap_tokens).run();
    std::vector<NewChunk> chunks;
    chunks.reserve(spans.size());
    for (auto [s, e] : spans) {
        NewChunk c;
        c.start = static_cast<int64_t>(s);
        c.end = static_cast<int64_t>(e);
        c.text = text.substr(s, e - s);
        c.n_tokens = approx_tokens(c.text);
        c.page_start = page_of(s);
        c.page_end = page_of(e - 1);
        chunks.push_back(std::move(c));
    }
    return chunks;
}

}  // namespace ragd
