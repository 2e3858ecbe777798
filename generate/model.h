// generate/model: a decoder-only transformer from a GGUF file, and a sequence to run it on.
//
// Architectures: llama (Llama 2/3, Mistral; RoPE on adjacent pairs), qwen2 (q/k/v biases,
// RoPE on halves), qwen3 (per-head RMSNorm of q and k, RoPE on halves). Weights stay in
// the mapped file in their stored format (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K,
// any mix); matrix products quantize the activations once and run the block dot products
// of generate/quant.h across a thread pool.
//
// Forward pass per layer (pre-norm): x += Wo·attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x));
// x += Wdown·(silu(Wgate·n(x)) * Wup·n(x)), with n = RMSNorm times its weight.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "generate/gguf.h"
#include "generate/threadpool.h"
#include "generate/tokenizer.h"

namespace ragd {

struct ModelParams {
    std::string arch;  // "llama", "qwen2", "qwen3"
    std::string name;  // general.name, or the file name
    int n_vocab = 0;
    int n_embd = 0;
    int n_layer = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;  // key/value length per head
    int n_ff = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    float rope_theta = 10000.0f;
    int rope_dim = 0;             // rotated dimensions per head (head_dim unless set)
    bool rope_neox = false;       // rotate (i, i + d/2) pairs instead of (2i, 2i + 1)
    float rope_freq_scale = 1;    // linear scaling: positions are multiplied by this
    bool has_rope_freqs = false;  // per-dimension frequency divisors (Llama 3.1 scaling)
};

// Matrices point into the mapping; norm weights and biases (small vectors) are converted
// to float once at load and owned by the Model.
struct LayerWeights {
    const gguf::Tensor *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
    const gguf::Tensor *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  // qwen2; null elsewhere
    const float *q_norm = nullptr, *k_norm = nullptr;         // qwen3; null elsewhere
};

class Model {
  public:
    // Opens PATH (read into memory or mapped, gguf::Load) and checks that every tensor the
    // architecture needs is there with the right shape and a supported type. Throws ragd::Error
    // (the GGUF reader's errors, Unsupported for an unknown architecture or type, Corrupt for a
    // missing tensor or a shape that disagrees with the metadata).
    static std::unique_ptr<Model> load(const std::string& path, gguf::Load how = gguf::Load::Auto);
    static std::unique_ptr<Model> from_file(gguf::File file);

    const ModelParams& params() const { return params_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const gguf::File& file() const { return file_; }

    // The matrices one decode step reads in full (every layer's, then the output's): what
    // bounds decode speed, bandwidth-wise.
    std::vector<const gguf::Tensor*> decode_matrices() const;

    // Internals the forward pass reads.
    const gguf::Tensor* token_embd = nullptr;
    const gguf::Tensor* output = nullptr;  // token_embd when the embeddings are tied
    const float* output_norm = nullptr;
    const float* rope_freqs = nullptr;  // rope_dim / 2 divisors, or null
    std::vector<LayerWeights> layers;

  private:
    explicit Model(gguf::File file);
    const float* floats(const std::string& name, int64_t expected, bool required);
    gguf::File file_;
    std::vector<std::vector<float>> owned_;
    ModelParams params_;
    std::unique_ptr<Tokenizer> tokenizer_;
};

// Element type of the KV cache. F32 is exact; Q8 keeps each key and value vector of a
// head as int8 with one float scale (max |x| / 127), a quarter of the memory, for long
// contexts (a 7B model's cache at 32K positions: 16 GiB in F32, 4.1 GiB in Q8).
enum class KvType { F32, Q8 };
// "f32" or "q8"; parse_kv_type throws Error(InvalidArgument) for anything else.
const char* kv_type_name(KvType t);
KvType parse_kv_type(const std::string& name);

// One sequence: its KV cache (n_ctx positions, float) and the scratch buffers of the
// forward pass. Not thread-safe; one Sequence per concurrent request.
class Sequence {
  public:
    // n_ctx 0 means the model's trained context length capped at kDefaultContext (the KV
    // cache of a 7B model at 4,096 positions is 1 GiB); n_threads 0 means the physical
    // cores.
    static constexpr int kDefaultContext = 4096;
    Sequence(const Model& model, int n_ctx = 0, int n_threads = 0, KvType kv_type = KvType::F32);
    ~Sequence();

    int n_ctx() const { return n_ctx_; }
    int n_past() const { return n_past_; }
    KvType kv_type() const { return kv_type_; }
    size_t kv_bytes() const;  // memory the KV cache takes when full

    // Runs tokens at positions n_past() .. n_past() + n - 1 and appends them to the
    // cache. Afterwards logits() is the distribution after the last token; with
    // all_logits, every position's logits are appended (n × n_vocab). Throws
    // ragd::Error(InvalidArgument) when the tokens would not fit in the context, or a
    // token id is out of range; the sequence is then unchanged.
    void eval(const int32_t* tokens, int n, std::vector<float>* all_logits = nullptr);
    void eval(const std::vector<int32_t>& tokens, std::vector<float>* all_logits = nullptr) {
        eval(tokens.data(), int(tokens.size()), all_logits);
    }
    const std::vector<float>& logits() const { return logits_; }

    // Forgets positions n and later (prefix reuse, context shifting).
    void truncate(int n);
    // The tokens in the cache, in order.
    const std::vector<int32_t>& tokens() const { return tokens_; }

  private:
    struct Scratch;
    const Model& model_;
    int n_ctx_;
    int n_past_ = 0;
    std::unique_ptr<ThreadPool> pool_;
    // Per [layer][kv head], n_ctx_alloc_ positions (n_ctx rounded up to a key block of
    // generate/attention.h): keys transposed in blocks of 64 positions, values as rows of
    // head_dim. Left uninitialised: a position is written before it is read (a new key
    // block is zeroed when its first position is written), so pages of the cache become
    // resident only as the context fills. With KvType::Q8 the elements are in
    // k_q8_/v_q8_ (same layout) and k_scale_/v_scale_ hold one scale per
    // [layer][kv head][pos]; the float arrays stay empty.
    int n_ctx_alloc_;
    KvType kv_type_;
    std::unique_ptr<float[]> k_cache_, v_cache_;
    std::unique_ptr<int8_t[]> k_q8_, v_q8_;
    std::unique_ptr<float[]> k_scale_, v_scale_;
    std::vector<float> logits_;
    std::vector<int32_t> tokens_;
    std::unique_ptr<Scratch> scratch_;

    void forward(const int32_t* tokens, int n, std::vector<float>* all_logits);
};

}  // namespace ragd
