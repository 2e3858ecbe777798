// generate/tokenizer_bpe: byte-level BPE (GPT-2 style), with the pre-tokenizer rules of
// GPT-2, Llama 3 and Qwen 2.
//
// Text is first cut into words by the model's pre-tokenizer regular expression, written
// out by hand below (std::regex has no \p{L}). Each word's UTF-8 bytes are mapped to the
// printable characters GPT-2 uses for bytes (bytes_to_unicode), then adjacent symbols are
// merged by merge rank, lowest first, leftmost first among equal ranks.
#include <array>
#include <cstdio>
#include <queue>

#include "config/config.h"
#include "generate/tokenizer_impl.h"
#include "generate/tokenizer_unicode.h"

namespace ragd::tok {

namespace {

// The pre-tokenizer regular expressions, alternative by alternative. At each position the
// first alternative that matches wins (as in a backtracking regex engine); every code
// point is covered by some alternative, so matches tile the text.
//
// gpt-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// qwen2:  as llama3 with \p{N} (single digits) for \p{N}{1,3}
// \s is the Unicode White_Space property.
class Splitter {
  public:
    explicit Splitter(std::u32string_view text) : c_(text), n_(text.size()), f_(text.size()) {
        for (size_t i = 0; i < n_; ++i) f_[i] = flags(c_[i]);
    }

    // End of the word starting at i.
    size_t next(size_t i, PreRules rules) const {
        if (size_t e = contraction(i, rules != PreRules::Gpt2)) return e;
        if (rules == PreRules::Gpt2) {
            if (size_t e = run_after_space(i, [&](size_t k) { return letter(k); })) return e;
            if (size_t e = run_after_space(i, [&](size_t k) { return number(k); })) return e;
            if (size_t e = run_after_space(i, [&](size_t k) { return other(k); })) return e;
        } else {
            // [^\r\n\p{L}\p{N}]?\p{L}+
            size_t j = i;
            if (!letter(i) && !number(i) && !newline(i) && letter(i + 1)) j = i + 1;
            if (letter(j)) return run(j, [&](size_t k) { return letter(k); });
            // \p{N}{1,3} or \p{N}
            if (number(i)) {
                size_t max = rules == PreRules::Llama3 ? 3 : 1;
                size_t e = i;
                while (e < n_ && e - i < max && number(e)) ++e;
                return e;
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            if (size_t e = run_after_space(i, [&](size_t k) { return other(k); }))
                return run(e, [&](size_t k) { return newline(k); });
        }
        if (space(i)) {
            size_t k = run(i, [&](size_t x) { return space(x); });
            if (rules != PreRules::Gpt2) {
                // \s*[\r\n]+ : up to the last line break of the run
                for (size_t p = k; p > i; --p)
                    if (newline(p - 1)) return p;
            }
            // \s+(?!\S) then \s+
            if (k == n_ || k - i == 1) return k;
            return k - 1;
        }
        return i + 1;  // not reached: every code point is covered above
    }

  private:
    std::u32string_view c_;
    size_t n_;
    std::vector<uint16_t> f_;

    bool letter(size_t k) const { return k < n_ && (f_[k] & tables::kLetter); }
    bool number(size_t k) const { return k < n_ && (f_[k] & tables::kNumber); }
    bool space(size_t k) const { return k < n_ && (f_[k] & tables::kWhitespace); }
    bool other(size_t k) const { return k < n_ && !letter(k) && !number(k) && !space(k); }
    bool newline(size_t k) const { return k < n_ && (c_[k] == '\r' || c_[k] == '\n'); }

    template <typename Pred>
    size_t run(size_t k, Pred pred) const {
        while (k < n_ && pred(k)) ++k;
        return k;
    }
    // " ?X+": the end of the match at i, or 0.
    template <typename Pred>
    size_t run_after_space(size_t i, Pred pred) const {
        size_t j = c_[i] == ' ' && pred(i + 1) ? i + 1 : i;
        return pred(j) ? run(j, pred) : 0;
    }
    // 's|'t|'re|'ve|'m|'ll|'d, ASCII case-insensitive for llama3/qwen2; end or 0.
    size_t contraction(size_t i, bool fold) const {
        if (c_[i] != '\'' || i + 1 >= n_) return 0;
        auto at = [&](size_t k) -> char32_t {
            if (k >= n_) return 0;
            char32_t ch = c_[k];
            return fold && ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
        };
        char32_t a = at(i + 1), b = at(i + 2);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return i + 3;
        return 0;
    }
};

// GPT-2's reversible map from bytes to printable code points: printable Latin-1 bytes map
// to themselves, the others to U+0100 onwards in byte order.
std::array<char32_t, 256> byte_to_unicode() {
    std::array<char32_t, 256> m{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        m[b] = printable ? char32_t(b) : next++;
    }
    return m;
}

class Bpe final : public Algorithm {
  public:
    Bpe(const Vocab& v, const gguf::File& file, std::string_view pre) : v_(v) {
        if (pre == "llama3" || pre == "llama-bpe") {
            rules_ = PreRules::Llama3;
            ignore_merges_ = true;  // a word that is a token is taken whole
        } else if (pre == "qwen2") {
            rules_ = PreRules::Qwen2;
            nfc_ = true;  // Qwen's tokenizer normalizes to NFC first
        } else if (pre != "gpt-2" && pre != "default" && !pre.empty()) {
            std::fprintf(stderr,
                         "ragd: tokenizer.ggml.pre \"%.*s\" is not known; using gpt-2 rules\n",
                         int(pre.size()), pre.data());
        }
        std::array<char32_t, 256> map = byte_to_unicode();
        unicode_to_byte_.fill(-1);
        for (int b = 0; b < 256; ++b) {
            std::string s;
            utf8_append(s, map[b]);
            byte_token_[b] = v_.find(s);
            unicode_to_byte_[map[b]] = int16_t(b);
            byte_symbol_[b] = s;
        }
        std::vector<std::string_view> merges = file.get_strings("tokenizer.ggml.merges");
        merges_.reserve(merges.size());
        for (size_t rank = 0; rank < merges.size(); ++rank) add_merge(merges[rank], rank);
    }

    void encode(std::string_view text, bool, std::vector<int32_t>& out) const override {
        std::u32string cps = utf8_decode(text);
        if (nfc_) cps = nfc(cps);
        std::string word;
        std::string mapped;
        for (auto [b, e] : pre_split(cps, rules_)) {
            word.clear();
            for (size_t k = b; k < e; ++k) utf8_append(word, cps[k]);
            if (ignore_merges_) {
                mapped.clear();
                for (unsigned char ch : word) mapped += byte_symbol_[ch];
                if (int32_t id = v_.find(mapped); id >= 0) {
                    out.push_back(id);
                    continue;
                }
            }
            merge_word(word, out);
        }
    }

    std::string piece(int32_t id) const override {
        std::string_view t = v_.text(id);
        if (v_.types[id] == kUserDefined) return std::string(t);
        std::string out;
        for (char32_t cp : utf8_decode(t)) {
            if (cp < unicode_to_byte_.size() && unicode_to_byte_[cp] >= 0)
                out.push_back(char(unicode_to_byte_[cp]));
            else
                utf8_append(out, cp);
        }
        return out;
    }

  private:
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    const Vocab& v_;
    PreRules rules_ = PreRules::Gpt2;
    bool ignore_merges_ = false;
    bool nfc_ = false;
    std::array<int32_t, 256> byte_token_{};
    std::array<std::string, 256> byte_symbol_;
    std::array<int16_t, 324> unicode_to_byte_{};
    std::unordered_map<uint64_t, Merge> merges_;

    static uint64_t key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

    void add_merge(std::string_view m, size_t rank) {
        // "left right"; a token may itself hold a space, so try each space as the split.
        for (size_t sp = m.find(' ', 1); sp != std::string_view::npos; sp = m.find(' ', sp + 1)) {
            std::string_view l = m.substr(0, sp), r = m.substr(sp + 1);
            int32_t a = v_.find(l), b = v_.find(r);
            if (a < 0 || b < 0) continue;
            std::string joined(l);
            joined += r;
            int32_t res = v_.find(joined);
            if (res < 0)
                throw Error(Error::Code::Corrupt, "tokenizer.ggml.merges[" + std::to_string(rank) +
                                                      "] makes \"" + joined +
                                                      "\", which is not a token");
            merges_.try_emplace(key(a, b), Merge{int32_t(rank), res});
            return;
        }
        throw Error(Error::Code::Corrupt, "tokenizer.ggml.merges[" + std::to_string(rank) + "] \"" +
                                              std::string(m) + "\" does not name two tokens");
    }

    void merge_word(std::string_view word, std::vector<int32_t>& out) const {
        struct Sym {
            int32_t id;
            int32_t prev, next;
        };
        struct Cand {
            int32_t rank, pos, left, right, result;
            bool operator<(const Cand& o) const {  // priority_queue pops the largest
                return rank != o.rank ? rank > o.rank : pos > o.pos;
            }
        };
        int32_t n = int32_t(word.size());
        std::vector<Sym> s(n);
        for (int32_t i = 0; i < n; ++i)
            s[i] = {byte_token_[static_cast<unsigned char>(word[i])], i - 1,
                    i + 1 < n ? i + 1 : -1};
        std::priority_queue<Cand> q;
        auto try_pair = [&](int32_t l) {
            if (l < 0 || s[l].next < 0) return;
            int32_t r = s[l].next;
            if (s[l].id < 0 || s[r].id < 0) return;
            auto it = merges_.find(key(s[l].id, s[r].id));
            if (it != merges_.end())
                q.push({it->second.rank, l, s[l].id, s[r].id, it->second.result});
        };
        for (int32_t i = 0; i + 1 < n; ++i) try_pair(i);
        while (!q.empty()) {
            Cand c = q.top();
            q.pop();
            Sym& l = s[c.pos];
            if (l.id != c.left || l.next < 0 || s[l.next].id != c.right) continue;
            int32_t r = l.next;
            l.id = c.result;
            l.next = s[r].next;
            if (l.next >= 0) s[l.next].prev = c.pos;
            s[r].id = -2;  // gone
            try_pair(l.prev);
            try_pair(c.pos);
        }
        for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = s[i].next) {
            if (s[i].id >= 0)
                out.push_back(s[i].id);
            else if (v_.unk >= 0)
                out.push_back(v_.unk);  // a byte the vocabulary lacks
        }
    }
};

}  // namespace

std::vector<std::pair<size_t, size_t>> pre_split(std::u32string_view text, PreRules rules) {
    std::vector<std::pair<size_t, size_t>> words;
    Splitter sp(text);
    for (size_t i = 0; i < text.size();) {
        size_t e = sp.next(i, rules);
        words.emplace_back(i, e);
        i = e;
    }
    return words;
}

std::unique_ptr<Algorithm> make_bpe(const Vocab& vocab, const gguf::File& file,
                                    std::string_view pre) {
    return std::make_unique<Bpe>(vocab, file, pre);
}

}  // namespace ragd::tok
