// generate/tokenizer_impl: what the tokenizer algorithms share, internal to generate/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "generate/gguf.h"

namespace ragd::tok {

// tokenizer.ggml.token_type values.
enum TokenType : int32_t {
    kUndefined = 0,
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6,
};

// The vocabulary: token strings (one buffer), types, scores, a reverse index and the ids of
// the special roles (-1 where the model has none).
struct Vocab {
    std::string blob;
    std::vector<uint32_t> offsets;  // n + 1
    std::vector<int32_t> types;
    std::vector<float> scores;  // empty unless the model uses them
    std::unordered_map<std::string_view, int32_t> index;

    int32_t bos = -1, eos = -1, unk = -1, pad = -1, sep = -1, cls = -1, eot = -1, eom = -1;

    int32_t size() const { return int32_t(types.size()); }
    std::string_view text(int32_t id) const {
        return std::string_view(blob).substr(offsets[id], offsets[id + 1] - offsets[id]);
    }
    int32_t find(std::string_view s) const {
        auto it = index.find(s);
        return it == index.end() ? -1 : it->second;
    }
    bool is_special(int32_t id) const { return types[id] == kControl || types[id] == kUnknown; }
};

// One tokenization algorithm over text without special tokens in it.
class Algorithm {
  public:
    virtual ~Algorithm() = default;
    // TEXT is well-formed UTF-8 (one fragment between special tokens). AFTER_SPECIAL: it
    // starts the input or follows a special token (SentencePiece adds its "▁" there).
    virtual void encode(std::string_view text, bool after_special,
                        std::vector<int32_t>& out) const = 0;
    // The bytes of a non-special token as they appear in text.
    virtual std::string piece(int32_t id) const = 0;
    // Whether decode() drops one leading space of its result (the dummy prefix).
    virtual bool strips_leading_space() const { return false; }
};

// Byte-level BPE (tokenizer.ggml.model "gpt2"); throws Corrupt for bad merges.
std::unique_ptr<Algorithm> make_bpe(const Vocab& vocab, const gguf::File& file,
                                    std::string_view pre);
// SentencePiece BPE by scores (tokenizer.ggml.model "llama").
std::unique_ptr<Algorithm> make_spm(const Vocab& vocab, const gguf::File& file);
// WordPiece (tokenizer.ggml.model "bert").
std::unique_ptr<Algorithm> make_wpm(const Vocab& vocab, const gguf::File& file);

// Pre-tokenizer rules of byte-level BPE, exposed for tests: splits TEXT into words, as
// [begin, end) offsets in code points.
enum class PreRules { Gpt2, Llama3, Qwen2 };
std::vector<std::pair<size_t, size_t>> pre_split(std::u32string_view text, PreRules rules);

}  // namespace ragd::tok
