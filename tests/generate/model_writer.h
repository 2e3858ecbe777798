// tests/generate/model_writer: random-weight transformer models as GGUF files, for the
// engine's tests and benchmarks. Weights are N(0, std^2) from a seeded generator, norm
// weights near 1, so every architecture and weight type can be built at any size.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_set>
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

namespace ragd::test {

// ---------------------------------------------------------------------------------------
// Encoders (bert, nomic-bert), for the embedding and reranking tests and benchmarks.
// ---------------------------------------------------------------------------------------

struct BertSpec {
    std::string arch = "bert";  // bert, nomic-bert
    int n_vocab = 1024;         // at least the base vocabulary (about 170 entries)
    int n_embd = 64;
    int n_layer = 2;
    int n_head = 4;
    int n_ff = 128;
    int n_ctx = 512;     // context_length (bert: rows of position_embd)
    int n_types = 2;     // rows of token_types.weight; 0 writes none
    float eps = 1e-12f;  // layer_norm_epsilon
    int pooling = 2;     // pooling_type as GGUF numbers it: 0 none, 1 mean, 2 cls, 3 last, 4 rank
    float rope_theta = 1000.0f;                // nomic-bert
    gguf::Type matrix_type = gguf::Type::F32;  // attention, FFN and head matrices
    gguf::Type embd_type = gguf::Type::F32;    // token, type and position embeddings
    bool cls_head = false;   // reranker: cls.weight/bias (dense + tanh) and cls.output.*
    bool cls_output = true;  // with cls_head: also write cls.output.weight/bias
    int n_cls_out = 1;       // rows of cls.output.weight
    float weight_std = 0.02f;
    uint64_t seed = 1;
    // Tests: names of tensors to leave out, or to write with a wrong shape or a given type.
    std::vector<std::string> omit;
    std::vector<std::string> misshape;  // written with one row too many
    std::vector<std::pair<std::string, gguf::Type>> overrides;
    // Written as zero bytes of a type the quantizer may not produce (Q4_1, Q8_K...).
    std::vector<std::pair<std::string, gguf::Type>> raw_types;
};

// A WordPiece vocabulary in the GGUF spelling (llama.cpp's converter): word-initial
// pieces start with "▁", continuations are bare. [PAD] [UNK] [CLS] [SEP] [MASK] are ids
// 0-4 (control tokens); then every printable ASCII character but upper-case letters as a
// word, lower-case letters and digits as continuations, some English words and
// suffixes, then two- and three-letter pieces up to n_vocab. Uncased, so text is lower-cased.
inline std::vector<std::string> bert_test_vocab(int n_vocab) {
    const std::string sp = "\xE2\x96\x81";
    std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    std::unordered_set<std::string> seen(v.begin(), v.end());
    auto add = [&](const std::string& t) {
        if (int(v.size()) >= n_vocab || !seen.insert(t).second) return;
        v.push_back(t);
    };
    for (int c = 33; c < 127; ++c)
        if (!(c >= 'A' && c <= 'Z')) add(sp + char(c));
    for (int c = 'a'; c <= 'z'; ++c) add(std::string(1, char(c)));
    for (int c = '0'; c <= '9'; ++c) add(std::string(1, char(c)));
    for (const char* w :
         {"the",      "license",    "grants",   "you",   "right",   "to",     "copy",     "modify",
          "and",      "distribute", "software", "this",  "program", "is",     "in",       "hope",
          "that",     "it",         "will",     "be",    "useful",  "but",    "without",  "any",
          "warranty", "hello",      "world",    "of",    "a",       "for",    "on",       "with",
          "as",       "document",   "page",     "query", "answer",  "search", "contract", "data"})
        add(sp + w);
    for (const char* s : {"ing", "ed", "s", "es", "er", "ly", "tion", "ment", "al", "ity"}) add(s);
    for (int a = 'a'; a <= 'z' && int(v.size()) < n_vocab; ++a)
        for (int b = 'a'; b <= 'z' && int(v.size()) < n_vocab; ++b) {
            add(sp + char(a) + char(b));
            add(std::string() + char(a) + char(b));
        }
    for (int a = 'a'; a <= 'z' && int(v.size()) < n_vocab; ++a)
        for (int b = 'a'; b <= 'z' && int(v.size()) < n_vocab; ++b)
            for (int c = 'a'; c <= 'z' && int(v.size()) < n_vocab; ++c) {
                add(sp + char(a) + char(b) + char(c));
                add(std::string() + char(a) + char(b) + char(c));
            }
    for (int i = 0; int(v.size()) < n_vocab; ++i) add("[unused" + std::to_string(i) + "]");
    return v;
}

inline GGUFWriter make_bert_model(const BertSpec& s) {
    GGUFWriter w;
    const std::string a = s.arch + ".";
    const bool nomic = s.arch == "nomic-bert";
    w.add_string("general.architecture", s.arch);
    w.add_string("general.name", "ragd-test-" + s.arch);
    w.add_u32("general.alignment", 32);
    w.add_u32(a + "context_length", uint32_t(s.n_ctx));
    w.add_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.add_u32(a + "block_count", uint32_t(s.n_layer));
    w.add_u32(a + "feed_forward_length", uint32_t(s.n_ff));
    w.add_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.add_f32(a + "attention.layer_norm_epsilon", s.eps);
    w.add_bool(a + "attention.causal", false);
    w.add_u32(a + "pooling_type", uint32_t(s.pooling));
    if (nomic) {
        w.add_f32(a + "rope.freq_base", s.rope_theta);
        w.add_u32(a + "rope.dimension_count", uint32_t(s.n_embd / s.n_head));
    }
    if (s.cls_head && s.cls_output) {
        std::vector<std::string> labels;
        for (int i = 0; i < s.n_cls_out; ++i) labels.push_back("LABEL_" + std::to_string(i));
        w.add_strings(a + "classifier.output_labels", labels);
    }

    std::vector<std::string> vocab = bert_test_vocab(s.n_vocab);
    std::vector<int32_t> types(vocab.size(), 1);
    for (int i = 0; i < 5; ++i) types[size_t(i)] = 3;
    w.add_string("tokenizer.ggml.model", "bert");
    w.add_strings("tokenizer.ggml.tokens", vocab);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.token_type_count", uint32_t(std::max(1, s.n_types)));
    w.add_u32("tokenizer.ggml.padding_token_id", 0);
    w.add_u32("tokenizer.ggml.unknown_token_id", 1);
    w.add_u32("tokenizer.ggml.bos_token_id", 2);
    w.add_u32("tokenizer.ggml.seperator_token_id", 3);  // sic: llama.cpp's key
    w.add_u32("tokenizer.ggml.mask_token_id", 4);

    auto skip = [&](const std::string& name) {
        for (const auto& o : s.omit)
            if (o == name) return true;
        return false;
    };
    auto rows_of = [&](const std::string& name, int rows) {
        for (const auto& o : s.misshape)
            if (o == name) return rows + 1;
        return rows;
    };
    auto type_for = [&](const std::string& name, gguf::Type def) {
        for (const auto& [key, t] : s.overrides)
            if (name == key) return t;
        return def;
    };
    auto raw = [&](const std::string& name, int64_t cols, int64_t rows) {
        for (const auto& [key, t] : s.raw_types)
            if (name == key) {
                std::vector<int64_t> ne = {cols};
                if (rows > 1) ne.push_back(rows);
                w.add_tensor_raw(name, t, ne,
                                 std::vector<uint8_t>(gguf::row_bytes(t, cols) * size_t(rows)));
                return true;
            }
        return false;
    };
    uint64_t tensor_seed = s.seed * 0x9E3779B97F4A7C15ull + 7;
    auto matrix = [&](const std::string& name, int cols, int rows, gguf::Type def, float sd) {
        const uint64_t seed = ++tensor_seed;
        if (skip(name) || raw(name, cols, rows)) return;
        w.add_tensor_lazy(name, type_for(name, def), {cols, rows_of(name, rows)},
                          [seed, cols, sd](int64_t r, float* v) {
                              std::mt19937_64 g(seed * 1000003u + uint64_t(r));
                              std::normal_distribution<float> nd(0.0f, sd);
                              for (int c = 0; c < cols; ++c) v[c] = nd(g);
                          });
    };
    auto vec = [&](const std::string& name, int n, float mean, float sd) {
        const uint64_t seed = ++tensor_seed;
        if (skip(name) || raw(name, n, 1)) return;
        std::mt19937_64 g(seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> v(static_cast<size_t>(rows_of(name, n)));
        for (float& x : v) x = mean + sd * nd(g);
        w.add_tensor(name, type_for(name, gguf::Type::F32), {int64_t(v.size())}, v.data());
    };
    const int D = s.n_embd, F = s.n_ff;
    const float sd = s.weight_std;
    matrix("token_embd.weight", D, s.n_vocab, s.embd_type, 1.0f);
    if (s.n_types > 0) matrix("token_types.weight", D, s.n_types, s.embd_type, 0.5f);
    if (!nomic) matrix("position_embd.weight", D, s.n_ctx, s.embd_type, 0.5f);
    vec("token_embd_norm.weight", D, 1.0f, 0.1f);
    vec("token_embd_norm.bias", D, 0.0f, 0.1f);
    for (int l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        if (nomic) {
            matrix(b + "attn_qkv.weight", D, 3 * D, s.matrix_type, sd);
        } else {
            matrix(b + "attn_q.weight", D, D, s.matrix_type, sd);
            vec(b + "attn_q.bias", D, 0.0f, 0.1f);
            matrix(b + "attn_k.weight", D, D, s.matrix_type, sd);
            vec(b + "attn_k.bias", D, 0.0f, 0.1f);
            matrix(b + "attn_v.weight", D, D, s.matrix_type, sd);
            vec(b + "attn_v.bias", D, 0.0f, 0.1f);
        }
        matrix(b + "attn_output.weight", D, D, s.matrix_type, sd);
        if (!nomic) vec(b + "attn_output.bias", D, 0.0f, 0.1f);
        vec(b + "attn_output_norm.weight", D, 1.0f, 0.1f);
        vec(b + "attn_output_norm.bias", D, 0.0f, 0.1f);
        matrix(b + "ffn_up.weight", D, F, s.matrix_type, sd);
        if (!nomic) vec(b + "ffn_up.bias", F, 0.0f, 0.1f);
        if (nomic) matrix(b + "ffn_gate.weight", D, F, s.matrix_type, sd);
        matrix(b + "ffn_down.weight", F, D, s.matrix_type, sd);
        if (!nomic) vec(b + "ffn_down.bias", D, 0.0f, 0.1f);
        vec(b + "layer_output_norm.weight", D, 1.0f, 0.1f);
        vec(b + "layer_output_norm.bias", D, 0.0f, 0.1f);
    }
    if (s.cls_head) {
        matrix("cls.weight", D, D, s.matrix_type, sd);
        vec("cls.bias", D, 0.0f, 0.1f);
        if (s.cls_output) {
            matrix("cls.output.weight", D, s.n_cls_out, s.matrix_type, sd * 4);
            vec("cls.output.bias", s.n_cls_out, 0.0f, 0.1f);
        }
    }
    return w;
}

inline void write_bert_model(const std::string& path, const BertSpec& spec) {
    make_bert_model(spec).write(path);
}

}  // namespace ragd::test
