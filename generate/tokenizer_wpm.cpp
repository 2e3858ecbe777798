// generate/tokenizer_wpm: WordPiece (tokenizer.ggml.model "bert").
//
// BERT's basic tokenizer first: control characters, NUL and U+FFFD are dropped, white space
// becomes a space, CJK ideographs become words of their own; for an uncased vocabulary the
// text is also lower-cased with its accents stripped (NFD, then non-spacing marks
// dropped). Words are split at white space, and every punctuation character (Unicode P*
// and ASCII symbols) is a word of its own. Each word is then cut greedily into the longest
// vocabulary pieces from the left; a word that cannot be cut, or that is longer than 100
// characters, is the unknown token.
//
// Vocabularies come in two spellings, both read:
//   Hugging Face: word-initial pieces as they are, continuations prefixed "##";
//   GGUF (llama.cpp's converter): word-initial pieces prefixed "▁", continuations bare.
// Cased or uncased: a vocabulary is taken as cased when at least one word piece in 200
// holds an upper-case letter (an uncased vocabulary has none: it was built lower-cased).
#include "generate/tokenizer_impl.h"
#include "generate/tokenizer_unicode.h"

namespace ragd::tok {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581
constexpr size_t kMaxWordChars = 100;

class Wpm final : public Algorithm {
  public:
    explicit Wpm(const Vocab& v) : v_(v) {
        size_t phantom = 0, hashes = 0, words = 0, upper = 0;
        for (int32_t id = 0; id < v_.size(); ++id) {
            if (v_.types[id] != kNormal && v_.types[id] != kUndefined) continue;
            std::string_view t = v_.text(id);
            if (t.size() > 2 && t.front() == '[' && t.back() == ']') continue;  // [CLS] etc.
            ++words;
            if (t.substr(0, kSpace.size()) == kSpace) ++phantom;
            if (t.size() > 2 && t.substr(0, 2) == "##") ++hashes;
            for (char32_t cp : utf8_decode(t)) {
                if (is_upper(cp)) {
                    ++upper;
                    break;
                }
            }
        }
        phantom_ = phantom >= hashes;
        lowercase_ = upper * 200 < words;
    }

    void encode(std::string_view text, bool, std::vector<int32_t>& out) const override {
        std::u32string cps;
        for (char32_t cp : utf8_decode(text)) {
            uint16_t f = flags(cp);
            bool ws = cp == '\t' || cp == '\n' || cp == '\r' || (f & tables::kWhitespace);
            if (cp == 0 || cp == 0xFFFD || (!ws && (f & tables::kOther))) continue;
            if (ws) {
                cps.push_back(' ');
            } else if (is_cjk_ideograph(cp)) {
                cps.push_back(' ');
                cps.push_back(cp);
                cps.push_back(' ');
            } else {
                cps.push_back(cp);
            }
        }
        if (lowercase_) {
            std::u32string lowered;
            for (char32_t cp : nfd(cps))
                if (!(flags(cp) & tables::kNonspacing)) append_lower(lowered, cp);
            cps = std::move(lowered);
        }
        size_t start = 0;
        auto flush = [&](size_t end) {
            if (end > start) word(std::u32string_view(cps).substr(start, end - start), out);
        };
        for (size_t i = 0; i < cps.size(); ++i) {
            char32_t cp = cps[i];
            if (is_whitespace(cp)) {
                flush(i);
                start = i + 1;
            } else if (punctuation(cp)) {
                flush(i);
                word(std::u32string_view(cps).substr(i, 1), out);
                start = i + 1;
            }
        }
        flush(cps.size());
    }

    std::string piece(int32_t id) const override {
        std::string_view t = v_.text(id);
        // Word-initial pieces start with a space, continuations do not.
        bool initial;
        if (phantom_) {
            initial = t.substr(0, kSpace.size()) == kSpace;
            if (initial) t.remove_prefix(kSpace.size());
        } else {
            initial = !(t.size() > 2 && t.substr(0, 2) == "##");
            if (!initial) t.remove_prefix(2);
        }
        std::string out;
        out.reserve(t.size() + 1);
        if (initial) out.push_back(' ');
        out.append(t.data(), t.size());
        return out;
    }

    bool strips_leading_space() const override { return true; }

  private:
    const Vocab& v_;
    bool phantom_ = true;
    bool lowercase_ = true;

    static bool punctuation(char32_t cp) {
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126) || is_punct(cp);
    }

    void word(std::u32string_view w, std::vector<int32_t>& out) const {
        if (w.size() > kMaxWordChars) {
            if (v_.unk >= 0) out.push_back(v_.unk);
            return;
        }
        std::vector<size_t> offs;  // byte offset of each code point, and the end
        std::string bytes;
        for (char32_t cp : w) {
            offs.push_back(bytes.size());
            utf8_append(bytes, cp);
        }
        offs.push_back(bytes.size());
        size_t first = out.size();
        std::string key;
        for (size_t b = 0; b < w.size();) {
            int32_t found = -1;
            size_t e = w.size();
            for (; e > b; --e) {
                key.clear();
                if (b == 0 && phantom_) key += kSpace;
                if (b > 0 && !phantom_) key += "##";
                key.append(bytes, offs[b], offs[e] - offs[b]);
                found = v_.find(key);
                if (found >= 0) break;
            }
            if (found < 0) {
                out.resize(first);
                if (v_.unk >= 0) out.push_back(v_.unk);
                return;
            }
            out.push_back(found);
            b = e;
        }
    }
};

}  // namespace

std::unique_ptr<Algorithm> make_wpm(const Vocab& vocab, const gguf::File&) {
    return std::make_unique<Wpm>(vocab);
}

}  // namespace ragd::tok
