// tests/generate/model_writer: random-weight transformer models as GGUF files, for the
// engine's tests and benchmarks. Weights are N(0, std^2) from a seeded generator, norm
// weights near 1, so every architecture and weight type can be built at any size.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/generate/gguf_writer.h"

namespace ragd::test {

struct ModelSpec {
    std::string arch = "llama";  // llama, qwen2, qwen3
    int n_vocab = 384;
    int n_embd = 256;
    int n_layer = 2;
    int n_head = 4;
    int n_head_kv = 2;
    int head_dim = 0;  // 0: n_embd / n_head
    int n_ff = 512;
    int n_ctx = 4096;
    float rope_theta = 10000.0f;
    float rms_eps = 1e-5f;
    bool tied_output = false;     // no output.weight: logits use token_embd
    float rope_scale_linear = 0;  // > 0: write rope.scaling.type linear with this factor
    bool rope_freqs = false;      // write rope_freqs.weight (Llama 3.1 style factors)
    gguf::Type matrix_type = gguf::Type::F32;  // attention and FFN matrices
    gguf::Type embd_type = gguf::Type::F32;    // token_embd
    gguf::Type output_type = gguf::Type::F32;  // output.weight
    // Optional per-tensor override, e.g. {"ffn_down", Q6_K} as Q4_K_M files mix types.
    std::vector<std::pair<std::string, gguf::Type>> overrides;
    int metadata_n_ff = 0;  // tests: a feed_forward_length other than the matrices' n_ff
    float weight_std = 0.02f;
    uint64_t seed = 1;
};

// A byte-level BPE vocabulary: the 256 bytes in GPT-2's byte-to-symbol mapping, then
// <s> and </s> (control tokens), then "<tN>" filler tokens up to n_vocab.
inline void add_test_tokenizer(GGUFWriter& w, int n_vocab) {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    int next = 0;  // GPT-2's mapping: printable bytes stand for themselves, the rest
                   // for U+0100, U+0101, ... in byte order
    for (int b = 0; b < 256; ++b) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + next++);
        std::string s;
        if (cp < 0x80) {
            s += char(cp);
        } else {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        }
        tokens.push_back(s);
        types.push_back(1);
    }
    tokens.push_back("<s>");
    types.push_back(3);
    tokens.push_back("</s>");
    types.push_back(3);
    while (int(tokens.size()) < n_vocab) {
        tokens.push_back("<t" + std::to_string(tokens.size()) + ">");
        types.push_back(4);
    }
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "default");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_strings("tokenizer.ggml.merges", {});
    w.add_u32("tokenizer.ggml.bos_token_id", 256);
    w.add_u32("tokenizer.ggml.eos_token_id", 257);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
}

inline GGUFWriter make_model(const ModelSpec& s) {
    GGUFWriter w;
    const std::string a = s.arch + ".";
    const int hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    w.add_string("general.architecture", s.arch);
    w.add_string("general.name", "ragd-test-" + s.arch);
    w.add_u32("general.alignment", 32);
    w.add_u32(a + "context_length", uint32_t(s.n_ctx));
    w.add_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.add_u32(a + "block_count", uint32_t(s.n_layer));
    w.add_u32(a + "feed_forward_length", uint32_t(s.metadata_n_ff ? s.metadata_n_ff : s.n_ff));
    w.add_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.add_u32(a + "attention.head_count_kv", uint32_t(s.n_head_kv));
    if (s.head_dim) {
        w.add_u32(a + "attention.key_length", uint32_t(hd));
        w.add_u32(a + "attention.value_length", uint32_t(hd));
    }
    w.add_u32(a + "rope.dimension_count", uint32_t(hd));
    w.add_f32(a + "rope.freq_base", s.rope_theta);
    w.add_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
    if (s.rope_scale_linear > 0) {
        w.add_string(a + "rope.scaling.type", "linear");
        w.add_f32(a + "rope.scaling.factor", s.rope_scale_linear);
    }
    add_test_tokenizer(w, s.n_vocab);

    std::mt19937_64 rng(s.seed);
    std::normal_distribution<float> normal(0.0f, s.weight_std);
    auto random = [&](size_t n, float mean, float std) {
        std::vector<float> v(n);
        for (float& x : v) x = mean + normal(rng) * (std / s.weight_std);
        return v;
    };
    auto type_for = [&](const std::string& name, gguf::Type def) {
        for (const auto& [key, t] : s.overrides)
            if (name.find(key) != std::string::npos) return t;
        return def;
    };
    // Matrices are made lazily, row by row from a generator seeded by (tensor, row), so
    // a 7B-shaped model streams to disk in parallel without holding it in memory.
    uint64_t tensor_seed = s.seed * 0x9E3779B97F4A7C15ull;
    auto matrix = [&](const std::string& name, int cols, int rows, gguf::Type def) {
        const uint64_t seed = ++tensor_seed;
        const float sd = s.weight_std;
        w.add_tensor_lazy(name, type_for(name, def), {cols, rows},
                          [seed, cols, sd](int64_t r, float* v) {
                              std::mt19937_64 g(seed * 1000003u + uint64_t(r));
                              std::normal_distribution<float> nd(0.0f, sd);
                              for (int c = 0; c < cols; ++c) v[c] = nd(g);
                          });
    };
    auto vec = [&](const std::string& name, int n, float mean, float std) {
        std::vector<float> v = random(size_t(n), mean, std);
        w.add_tensor(name, gguf::Type::F32, {n}, v.data());
    };
    const int q_dim = s.n_head * hd, kv_dim = s.n_head_kv * hd;
    matrix("token_embd.weight", s.n_embd, s.n_vocab, s.embd_type);
    for (int l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        vec(b + "attn_norm.weight", s.n_embd, 1.0f, 0.1f);
        matrix(b + "attn_q.weight", s.n_embd, q_dim, s.matrix_type);
        matrix(b + "attn_k.weight", s.n_embd, kv_dim, s.matrix_type);
        matrix(b + "attn_v.weight", s.n_embd, kv_dim, s.matrix_type);
        matrix(b + "attn_output.weight", q_dim, s.n_embd, s.matrix_type);
        if (s.arch == "qwen2") {
            vec(b + "attn_q.bias", q_dim, 0.0f, 0.1f);
            vec(b + "attn_k.bias", kv_dim, 0.0f, 0.1f);
            vec(b + "attn_v.bias", kv_dim, 0.0f, 0.1f);
        }
        if (s.arch == "qwen3") {
            vec(b + "attn_q_norm.weight", hd, 1.0f, 0.1f);
            vec(b + "attn_k_norm.weight", hd, 1.0f, 0.1f);
        }
        vec(b + "ffn_norm.weight", s.n_embd, 1.0f, 0.1f);
        matrix(b + "ffn_gate.weight", s.n_embd, s.n_ff, s.matrix_type);
        matrix(b + "ffn_up.weight", s.n_embd, s.n_ff, s.matrix_type);
        matrix(b + "ffn_down.weight", s.n_ff, s.n_embd, s.matrix_type);
    }
    vec("output_norm.weight", s.n_embd, 1.0f, 0.1f);
    if (s.rope_freqs) {  // factors from 1 (high frequencies) to 8 (low), as Llama 3.1's
        std::vector<float> f(static_cast<size_t>(hd / 2));
        for (size_t i = 0; i < f.size(); ++i) f[i] = 1.0f + 7.0f * float(i) / float(f.size() - 1);
        w.add_tensor("rope_freqs.weight", gguf::Type::F32, {hd / 2}, f.data());
    }
    if (!s.tied_output) matrix("output.weight", s.n_embd, s.n_vocab, s.output_type);
    return w;
}

}  // namespace ragd::test
