// generate/tokenizer_spm: SentencePiece BPE (tokenizer.ggml.model "llama": Llama 2,
// Mistral, Gemma).
//
// Spaces become "▁" (U+2581), and a "▁" is put in front of the text and of every fragment
// that follows a special token unless tokenizer.ggml.add_space_prefix is false (Gemma).
// The text starts as one symbol per character; the adjacent pair whose concatenation is a
// token with the highest score is merged (leftmost among equal scores) until no pair is a
// token. A character that is not a token becomes its UTF-8 bytes as <0xNN> tokens (byte
// fallback), or the unknown token when the vocabulary has no byte tokens (consecutive
// unknown tokens fuse into one).
#include <array>
#include <cstdio>
#include <queue>

#include "generate/tokenizer_impl.h"
#include "generate/tokenizer_unicode.h"

namespace ragd::tok {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

class Spm final : public Algorithm {
  public:
    Spm(const Vocab& v, const gguf::File& file) : v_(v) {
        add_space_prefix_ = file.get_bool("tokenizer.ggml.add_space_prefix", true);
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            byte_token_[b] = v_.find(name);
        }
        // Without scores, earlier pieces win: SentencePiece orders its pieces by score.
        if (v_.scores.empty()) {
            scores_.resize(v_.size());
            for (int32_t i = 0; i < v_.size(); ++i) scores_[i] = -float(i);
        }
    }

    void encode(std::string_view text, bool after_special,
                std::vector<int32_t>& out) const override {
        std::string s;
        s.reserve(text.size() + 8);
        if (add_space_prefix_ && after_special) s += kSpace;
        for (char ch : text) {
            if (ch == ' ')
                s += kSpace;
            else
                s.push_back(ch);
        }
        if (s.empty()) return;

        struct Sym {
            int32_t start, len;
            int32_t prev, next;
        };
        struct Cand {
            float score;
            int32_t pos, left_len, right_len, id;
            bool operator<(const Cand& o) const {  // priority_queue pops the largest
                return score != o.score ? score < o.score : pos > o.pos;
            }
        };
        std::vector<Sym> sym;
        for (int32_t i = 0; i < int32_t(s.size());) {
            int32_t len = utf8_len(static_cast<unsigned char>(s[i]));
            len = std::min<int32_t>(len, int32_t(s.size()) - i);
            sym.push_back({i, len, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1});
            i += len;
        }
        sym.back().next = -1;
        std::priority_queue<Cand> q;
        auto try_pair = [&](int32_t l) {
            if (l < 0 || sym[l].next < 0) return;
            const Sym& a = sym[l];
            const Sym& b = sym[a.next];
            int32_t id = v_.find(std::string_view(s).substr(a.start, a.len + b.len));
            if (id < 0 || !mergeable(id)) return;
            q.push({score(id), l, a.len, b.len, id});
        };
        for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) try_pair(i);
        while (!q.empty()) {
            Cand c = q.top();
            q.pop();
            Sym& a = sym[c.pos];
            if (a.len != c.left_len || a.next < 0 || sym[a.next].len != c.right_len) continue;
            Sym& b = sym[a.next];
            a.len += b.len;
            b.len = 0;  // gone
            a.next = b.next;
            if (a.next >= 0) sym[a.next].prev = c.pos;
            try_pair(a.prev);
            try_pair(c.pos);
        }
        for (int32_t i = 0; i >= 0; i = sym[i].next) {
            std::string_view piece = std::string_view(s).substr(sym[i].start, sym[i].len);
            int32_t id = v_.find(piece);
            if (id >= 0 && v_.types[id] != kControl) {
                out.push_back(id);
                continue;
            }
            for (unsigned char b : piece) {
                if (byte_token_[b] >= 0)
                    out.push_back(byte_token_[b]);
                else if (v_.unk >= 0 && (out.empty() || out.back() != v_.unk))
                    out.push_back(v_.unk);  // consecutive unknowns fuse into one
            }
        }
    }

    std::string piece(int32_t id) const override {
        std::string_view t = v_.text(id);
        if (v_.types[id] == kByte && t.size() == 6 && t.substr(0, 3) == "<0x") {
            int hi = hex(t[3]), lo = hex(t[4]);
            if (hi >= 0 && lo >= 0) return std::string(1, char(hi * 16 + lo));
        }
        std::string out;
        for (size_t i = 0; i < t.size();) {
            if (t.substr(i, 3) == kSpace) {
                out.push_back(' ');
                i += 3;
            } else {
                out.push_back(t[i++]);
            }
        }
        return out;
    }

    bool strips_leading_space() const override { return add_space_prefix_; }

  private:
    const Vocab& v_;
    bool add_space_prefix_ = true;
    std::array<int32_t, 256> byte_token_{};
    std::vector<float> scores_;

    float score(int32_t id) const { return v_.scores.empty() ? scores_[id] : v_.scores[id]; }
    bool mergeable(int32_t id) const {
        int32_t t = v_.types[id];
        return t == kNormal || t == kUserDefined || t == kUndefined;
    }
    static int32_t utf8_len(unsigned char lead) {
        return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    }
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    }
};

}  // namespace

std::unique_ptr<Algorithm> make_spm(const Vocab& vocab, const gguf::File& file) {
    return std::make_unique<Spm>(vocab, file);
}

}  // namespace ragd::tok
