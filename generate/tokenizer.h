// generate/tokenizer: text <-> token ids, built from a GGUF file's tokenizer metadata.
//
// Supported `tokenizer.ggml.model` values:
//   gpt2  byte-level BPE with merges; the pre-tokenizer (tokenizer.ggml.pre) picks the
//         splitting rules: "gpt-2"/"default", "llama3"/"llama-bpe", "qwen2" (others fall
//         back to gpt-2 rules with a warning on stderr).
//   llama SentencePiece BPE by scores, "▁" for spaces, byte fallback <0xNN> (Llama 2,
//         Mistral, Gemma).
//   bert  WordPiece with "##" continuations, lower-casing and basic punctuation splitting.
// User-defined tokens (type 4, e.g. Qwen's <think>) are always matched whole in the text;
// control tokens (type 3, e.g. <|im_start|>) only when parse_special is set, leftmost
// and longest first. Invalid UTF-8 in the input is replaced by U+FFFD, never thrown.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "generate/gguf.h"

namespace ragd {

class Tokenizer {
  public:
    // Throws ragd::Error Unsupported for an unknown model, Corrupt for inconsistent
    // metadata (token count mismatches, merges naming unknown tokens, ids out of range).
    static Tokenizer from_gguf(const gguf::File& file);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // add_special: prepend BOS / append EOS as the metadata flags say
    // (tokenizer.ggml.add_bos_token / add_eos_token, with the model's defaults; bert adds
    // [CLS] ... [SEP]). parse_special: text like "<|im_start|>" becomes its special id.
    std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                bool parse_special = false) const;

    // The bytes of one token as it appears in text (byte tokens give their byte, "▁"
    // gives a space, byte-level BPE symbols are mapped back to bytes). Special tokens
    // give their text only when render_special is set.
    std::string piece(int32_t id, bool render_special = false) const;
    std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

    int32_t n_vocab() const;
    int32_t bos() const;  // -1 when the model has none
    int32_t eos() const;
    bool is_end_of_generation(int32_t id) const;      // eos, eot, <|im_end|>, <|eot_id|>, ...
    std::string_view model() const;                   // "gpt2", "llama", "bert"
    std::string_view pre() const;                     // pre-tokenizer name as read
    std::string_view text(int32_t id) const;          // the vocabulary string of id
    int32_t find(std::string_view token_text) const;  // id of a vocabulary string, or -1

  private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace ragd
