// generate/tokenizer: see tokenizer.h. This file reads the vocabulary and the special
// roles from GGUF metadata, cuts the input at special tokens, and hands the text between
// them to the model's algorithm (tokenizer_bpe.cpp, tokenizer_spm.cpp, tokenizer_wpm.cpp).
//
// Special tokens in the text: user-defined tokens (type 4: added words such as Qwen's
// "<think>" or Gemma's whitespace runs) are always matched whole, as Hugging Face's added
// tokens are; control and unknown tokens (types 3 and 2: "<|im_start|>", "<s>") only with
// parse_special. At each position the longest matching token wins (leftmost-longest).
#include "generate/tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>

#include "config/config.h"
#include "generate/tokenizer_impl.h"
#include "generate/tokenizer_unicode.h"

namespace ragd {

using tok::Vocab;

namespace {

[[noreturn]] void corrupt(const std::string& what) {
    throw Error(Error::Code::Corrupt, "tokenizer: " + what);
}

// A byte trie over the texts of the tokens matched whole.
class SpecialTrie {
  public:
    SpecialTrie() : nodes_(1) {}

    void add(std::string_view text, int32_t id, bool always) {
        if (text.empty()) return;
        int32_t n = 0;
        for (unsigned char c : text) {
            auto& ch = nodes_[n].children;
            auto it = std::lower_bound(ch.begin(), ch.end(), c,
                                       [](const auto& e, unsigned char k) { return e.first < k; });
            if (it == ch.end() || it->first != c) {
                int32_t next = int32_t(nodes_.size());
                it = ch.insert(it, {c, next});
                nodes_.emplace_back();
                n = next;
            } else {
                n = it->second;
            }
        }
        // A duplicate text keeps its first (lowest) id.
        if (nodes_[n].any < 0) nodes_[n].any = id;
        if (always && nodes_[n].always < 0) nodes_[n].always = id;
    }

    // The longest token at the start of TEXT: its id and length, or (-1, 0).
    std::pair<int32_t, size_t> match(std::string_view text, bool parse_special) const {
        std::pair<int32_t, size_t> best{-1, 0};
        int32_t n = 0;
        for (size_t i = 0; i < text.size(); ++i) {
            const auto& ch = nodes_[n].children;
            unsigned char c = static_cast<unsigned char>(text[i]);
            auto it = std::lower_bound(ch.begin(), ch.end(), c,
                                       [](const auto& e, unsigned char k) { return e.first < k; });
            if (it == ch.end() || it->first != c) break;
            n = it->second;
            int32_t id = parse_special ? nodes_[n].any : nodes_[n].always;
            if (id >= 0) best = {id, i + 1};
        }
        return best;
    }

    bool empty() const { return nodes_.size() == 1; }
    // Whether any token starts with byte C (a quick filter).
    bool starts(unsigned char c) const {
        const auto& ch = nodes_[0].children;
        return std::binary_search(ch.begin(), ch.end(), std::pair<unsigned char, int32_t>(c, 0),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    }

  private:
    struct Node {
        std::vector<std::pair<unsigned char, int32_t>> children;
        int32_t any = -1;     // any matched-whole token ending here
        int32_t always = -1;  // a user-defined token ending here
    };
    std::vector<Node> nodes_;
};

}  // namespace

struct Tokenizer::Impl {
    Vocab vocab;
    std::string model, pre;
    bool add_bos = false, add_eos = false, add_sep = false;
    bool bert = false;
    std::unique_ptr<tok::Algorithm> algo;
    SpecialTrie specials;
    std::vector<int32_t> end_of_generation;  // sorted
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
    auto impl = std::make_unique<Impl>();
    Impl& t = *impl;
    Vocab& v = t.vocab;
    t.model = file.get_string("tokenizer.ggml.model");
    if (t.model.empty())
        throw Error(Error::Code::Unsupported, "tokenizer: the file has no tokenizer.ggml.model");
    if (t.model != "gpt2" && t.model != "llama" && t.model != "bert")
        throw Error(Error::Code::Unsupported,
                    "tokenizer: tokenizer.ggml.model \"" + t.model + "\" is not supported");
    t.pre = file.get_string("tokenizer.ggml.pre", "default");
    t.bert = t.model == "bert";

    std::vector<std::string_view> tokens = file.get_strings("tokenizer.ggml.tokens");
    if (tokens.empty()) corrupt("tokenizer.ggml.tokens is missing or empty");
    if (tokens.size() > size_t(std::numeric_limits<int32_t>::max() / 2))
        corrupt("tokenizer.ggml.tokens has too many entries");
    const int32_t n = int32_t(tokens.size());
    size_t total = 0;
    for (auto s : tokens) total += s.size();
    if (total > std::numeric_limits<uint32_t>::max()) corrupt("tokenizer.ggml.tokens too large");
    v.blob.reserve(total);
    v.offsets.reserve(n + 1);
    for (auto s : tokens) {
        v.offsets.push_back(uint32_t(v.blob.size()));
        v.blob += s;
    }
    v.offsets.push_back(uint32_t(v.blob.size()));

    std::vector<int64_t> types = file.get_ints("tokenizer.ggml.token_type");
    if (!types.empty() && types.size() != tokens.size())
        corrupt("tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                std::to_string(n) + " tokens");
    v.types.assign(n, tok::kNormal);
    for (int32_t i = 0; i < int32_t(types.size()); ++i) {
        if (types[i] < 0 || types[i] > tok::kByte)
            corrupt("tokenizer.ggml.token_type[" + std::to_string(i) + "] is " +
                    std::to_string(types[i]));
        v.types[i] = int32_t(types[i]);
    }
    v.scores = file.get_floats("tokenizer.ggml.scores");
    if (!v.scores.empty() && v.scores.size() != tokens.size())
        corrupt("tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " +
                std::to_string(n) + " tokens");

    v.index.reserve(n);
    for (int32_t i = 0; i < n; ++i) v.index.try_emplace(v.text(i), i);  // first id wins

    auto id_of = [&](const char* key, int32_t def = -1) -> int32_t {
        int64_t id = file.get_int(key, def);
        if (id == -1 || id == int64_t(UINT32_MAX)) return -1;  // "none", as i32 or u32
        if (id < 0 || id >= n)
            corrupt(std::string(key) + " is " + std::to_string(id) + ", outside the " +
                    std::to_string(n) + " tokens");
        return int32_t(id);
    };
    v.bos = id_of("tokenizer.ggml.bos_token_id");
    v.eos = id_of("tokenizer.ggml.eos_token_id");
    v.unk = id_of("tokenizer.ggml.unknown_token_id");
    v.pad = id_of("tokenizer.ggml.padding_token_id");
    v.sep = id_of("tokenizer.ggml.seperator_token_id");
    v.cls = id_of("tokenizer.ggml.cls_token_id");
    v.eot = id_of("tokenizer.ggml.eot_token_id");
    v.eom = id_of("tokenizer.ggml.eom_token_id");
    if (v.unk < 0) {
        // Files without the key still mark their unknown token by type.
        auto it = std::find(v.types.begin(), v.types.end(), int32_t(tok::kUnknown));
        if (it != v.types.end()) v.unk = int32_t(it - v.types.begin());
    }

    if (t.model == "gpt2") {
        t.algo = tok::make_bpe(v, file, t.pre);
        t.add_bos = file.get_bool("tokenizer.ggml.add_bos_token",
                                  t.pre == "llama3" || t.pre == "llama-bpe");
    } else if (t.model == "llama") {
        t.algo = tok::make_spm(v, file);
        t.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", true);
    } else {
        t.algo = tok::make_wpm(v, file);
        if (v.cls < 0) v.cls = v.bos;
        if (v.sep < 0) v.sep = v.eos;
        t.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", true);  // [CLS]
        t.add_sep = file.get_bool("tokenizer.ggml.add_sep_token", true);  // [SEP]
    }
    t.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);

    for (int32_t i = 0; i < n; ++i) {
        int32_t ty = v.types[i];
        if (ty == tok::kControl || ty == tok::kUnknown || ty == tok::kUserDefined)
            t.specials.add(v.text(i), i, ty == tok::kUserDefined);
    }

    static constexpr std::array<std::string_view, 11> kEndTexts = {
        "<|im_end|>",    "<|eot_id|>",    "<|eom_id|>", "<|end_of_text|>",
        "<|endoftext|>", "<end_of_turn>", "</s>",       "<|end|>",
        "<eos>",         "<|return|>",    "<|EOT|>"};
    for (int32_t id : {v.eos, v.eot, v.eom})
        if (id >= 0) t.end_of_generation.push_back(id);
    for (std::string_view s : kEndTexts) {
        int32_t id = v.find(s);
        if (id >= 0 && v.types[id] == tok::kControl) t.end_of_generation.push_back(id);
    }
    std::sort(t.end_of_generation.begin(), t.end_of_generation.end());
    t.end_of_generation.erase(std::unique(t.end_of_generation.begin(), t.end_of_generation.end()),
                              t.end_of_generation.end());
    return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    const Impl& t = *impl_;
    const Vocab& v = t.vocab;
    std::string clean;
    if (!tok::utf8_valid(text)) {
        clean = tok::utf8_sanitize(text);
        text = clean;
    }
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (add_special && t.add_bos) {
        int32_t first = t.bert ? v.cls : v.bos;
        if (first >= 0) out.push_back(first);
    }
    size_t start = 0;  // of the pending text fragment
    bool after_special = true;
    auto flush = [&](size_t end) {
        if (end > start) {
            t.algo->encode(text.substr(start, end - start), after_special, out);
            after_special = false;
        }
    };
    if (!t.specials.empty()) {
        for (size_t i = 0; i < text.size();) {
            if (!t.specials.starts(static_cast<unsigned char>(text[i]))) {
                ++i;
                continue;
            }
            auto [id, len] = t.specials.match(text.substr(i), parse_special);
            if (id < 0) {
                ++i;
                continue;
            }
            flush(i);
            out.push_back(id);
            after_special = true;
            i += len;
            start = i;
        }
    }
    flush(text.size());
    if (add_special && t.bert && t.add_sep && v.sep >= 0) out.push_back(v.sep);
    if (add_special && t.add_eos && v.eos >= 0) out.push_back(v.eos);
    return out;
}

std::string Tokenizer::piece(int32_t id, bool render_special) const {
    const Vocab& v = impl_->vocab;
    if (id < 0 || id >= v.size()) return "";
    if (v.is_special(id)) return render_special ? std::string(v.text(id)) : "";
    return impl_->algo->piece(id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
    std::string out;
    bool first = true;  // no text token yet
    for (int32_t id : ids) {
        std::string p = piece(id, render_special);
        if (p.empty()) continue;
        bool special = id >= 0 && id < n_vocab() && impl_->vocab.is_special(id);
        if (first && !special && impl_->algo->strips_leading_space() && p[0] == ' ') p.erase(0, 1);
        first = false;
        out += p;
    }
    return tok::utf8_valid(out) ? out : tok::utf8_sanitize(out);
}

int32_t Tokenizer::n_vocab() const {
    return impl_->vocab.size();
}
int32_t Tokenizer::bos() const {
    return impl_->bert ? impl_->vocab.cls : impl_->vocab.bos;
}
int32_t Tokenizer::eos() const {
    return impl_->bert ? impl_->vocab.sep : impl_->vocab.eos;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
    const auto& e = impl_->end_of_generation;
    return std::binary_search(e.begin(), e.end(), id);
}

std::string_view Tokenizer::model() const {
    return impl_->model;
}
std::string_view Tokenizer::pre() const {
    return impl_->pre;
}

std::string_view Tokenizer::text(int32_t id) const {
    if (id < 0 || id >= n_vocab()) return {};
    return impl_->vocab.text(id);
}

int32_t Tokenizer::find(std::string_view token_text) const {
    return impl_->vocab.find(token_text);
}

}  // namespace ragd
