// tests/generate/reference_forward: the transformer forward pass written as plainly as
// possible, to check the engine against. Every weight is converted to float up front;
// every position is recomputed from scratch (no KV cache); sums are in double; nothing
// is shared with generate/model.cpp but the block decoders of generate/quant (which are
// checked against hand-made blocks in quant_test and against llama.cpp's outputs).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "generate/gguf.h"
#include "generate/quant.h"

namespace ragd::test {

struct ReferenceModel {
    // A weight matrix as floats, and the format the engine rounds its input vector to.
    struct Matrix {
        std::vector<float> w;
        gguf::Type act = gguf::Type::F32;
        bool empty() const { return w.empty(); }
    };
    std::string arch;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    double eps, theta, freq_scale = 1.0;
    struct Layer {
        std::vector<float> attn_norm, bq, bk, bv, q_norm, k_norm, ffn_norm;
        Matrix wq, wk, wv, wo, gate, up, down;
    };
    std::vector<float> embd, out_norm, rope_freqs;
    Matrix out;
    std::vector<Layer> layers;
    // When set, each matrix product first rounds its input vector through the format the
    // engine quantizes activations to (Q8_0 or Q8_K for quantized weights), as the engine
    // specifies; the rest stays in double. Without it, activations are exact.
    bool quantize_activations = false;

    static std::vector<float> floats(const gguf::File& f, const std::string& name) {
        const gguf::Tensor* t = f.tensor(name);
        if (!t) return {};
        std::vector<float> v(static_cast<size_t>(t->n_elements()));
        quant::dequantize_row(t->type, t->data, v.data(), t->n_elements());
        return v;
    }
    static Matrix matrix(const gguf::File& f, const std::string& name) {
        const gguf::Tensor* t = f.tensor(name);
        if (!t) return {};
        return {floats(f, name), quant::vec_dot_type(t->type)};
    }

    explicit ReferenceModel(const gguf::File& f) {
        arch = f.get_string("general.architecture");
        const std::string a = arch + ".";
        n_embd = int(f.get_int(a + "embedding_length", 0));
        n_layer = int(f.get_int(a + "block_count", 0));
        n_head = int(f.get_int(a + "attention.head_count", 0));
        n_head_kv = int(f.get_int(a + "attention.head_count_kv", n_head));
        head_dim = int(f.get_int(a + "attention.key_length", n_embd / n_head));
        n_ff = int(f.get_int(a + "feed_forward_length", 0));
        eps = f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5);
        theta = f.get_float(a + "rope.freq_base", 10000.0);
        if (f.get_string(a + "rope.scaling.type", "none") == "linear")
            freq_scale = 1.0 / f.get_float(a + "rope.scaling.factor", 1.0);
        embd = floats(f, "token_embd.weight");
        n_vocab = int(embd.size() / size_t(n_embd));
        out_norm = floats(f, "output_norm.weight");
        rope_freqs = floats(f, "rope_freqs.weight");
        out = matrix(f, "output.weight");
        if (out.empty()) out = matrix(f, "token_embd.weight");
        for (int l = 0; l < n_layer; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            Layer L;
            L.attn_norm = floats(f, b + "attn_norm.weight");
            L.wq = matrix(f, b + "attn_q.weight");
            L.wk = matrix(f, b + "attn_k.weight");
            L.wv = matrix(f, b + "attn_v.weight");
            L.wo = matrix(f, b + "attn_output.weight");
            L.bq = floats(f, b + "attn_q.bias");
            L.bk = floats(f, b + "attn_k.bias");
            L.bv = floats(f, b + "attn_v.bias");
            L.q_norm = floats(f, b + "attn_q_norm.weight");
            L.k_norm = floats(f, b + "attn_k_norm.weight");
            L.ffn_norm = floats(f, b + "ffn_norm.weight");
            L.gate = matrix(f, b + "ffn_gate.weight");
            L.up = matrix(f, b + "ffn_up.weight");
            L.down = matrix(f, b + "ffn_down.weight");
            layers.push_back(std::move(L));
        }
    }

    // y = W x for W stored as `rows` rows of x.size() columns.
    std::vector<double> matvec(const Matrix& m, std::vector<double> x, int rows) const {
        const size_t cols = x.size();
        if (quantize_activations && m.act != gguf::Type::F32) {
            std::vector<float> xf(x.begin(), x.end()), back(cols);
            std::vector<uint8_t> q(gguf::row_bytes(m.act, int64_t(cols)));
            quant::quantize_row(m.act, xf.data(), q.data(), int64_t(cols));
            quant::dequantize_row(m.act, q.data(), back.data(), int64_t(cols));
            x.assign(back.begin(), back.end());
        }
        std::vector<double> y(size_t(rows), 0.0);
        for (int r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c)
                y[size_t(r)] += double(m.w[size_t(r) * cols + c]) * x[c];
        return y;
    }
    std::vector<double> norm(const std::vector<double>& x, const std::vector<float>& w) const {
        double ss = 0;
        for (double v : x) ss += v * v;
        double s = 1.0 / std::sqrt(ss / double(x.size()) + eps);
        std::vector<double> y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
        return y;
    }
    // Rotates one head in place: llama pairs (2i, 2i+1); qwen2/qwen3 pairs (i, i+d/2).
    void rope(double* v, int pos) const {
        const int half = head_dim / 2;
        for (int i = 0; i < half; ++i) {
            double angle = pos * freq_scale * std::pow(theta, -2.0 * i / head_dim);
            if (!rope_freqs.empty()) angle /= rope_freqs[size_t(i)];
            int i0 = arch == "llama" ? 2 * i : i, i1 = arch == "llama" ? 2 * i + 1 : i + half;
            double a = v[i0], b = v[i1];
            v[i0] = a * std::cos(angle) - b * std::sin(angle);
            v[i1] = a * std::sin(angle) + b * std::cos(angle);
        }
    }

    // Logits at every position of tokens: n × n_vocab.
    std::vector<float> logits(const std::vector<int32_t>& tokens) const {
        const int n = int(tokens.size()), q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim;
        std::vector<std::vector<double>> x(static_cast<size_t>(n));
        for (int t = 0; t < n; ++t)
            x[size_t(t)].assign(embd.begin() + long(tokens[size_t(t)]) * n_embd,
                                embd.begin() + long(tokens[size_t(t)] + 1) * n_embd);
        for (const Layer& L : layers) {
            const size_t un = static_cast<size_t>(n);
            std::vector<std::vector<double>> q(un), k(un), v(un);
            for (int t = 0; t < n; ++t) {
                std::vector<double> h = norm(x[size_t(t)], L.attn_norm);
                q[size_t(t)] = matvec(L.wq, h, q_dim);
                k[size_t(t)] = matvec(L.wk, h, kv_dim);
                v[size_t(t)] = matvec(L.wv, h, kv_dim);
                if (!L.bq.empty()) {
                    for (int i = 0; i < q_dim; ++i) q[size_t(t)][size_t(i)] += L.bq[size_t(i)];
                    for (int i = 0; i < kv_dim; ++i) {
                        k[size_t(t)][size_t(i)] += L.bk[size_t(i)];
                        v[size_t(t)][size_t(i)] += L.bv[size_t(i)];
                    }
                }
                auto head_norm = [&](std::vector<double>& vec, int heads,
                                     const std::vector<float>& w) {
                    for (int hh = 0; hh < heads; ++hh) {
                        std::vector<double> part(vec.begin() + hh * head_dim,
                                                 vec.begin() + (hh + 1) * head_dim);
                        part = norm(part, w);
                        std::copy(part.begin(), part.end(), vec.begin() + hh * head_dim);
                    }
                };
                if (!L.q_norm.empty()) {
                    head_norm(q[size_t(t)], n_head, L.q_norm);
                    head_norm(k[size_t(t)], n_head_kv, L.k_norm);
                }
                for (int hh = 0; hh < n_head; ++hh) rope(&q[size_t(t)][size_t(hh * head_dim)], t);
                for (int hh = 0; hh < n_head_kv; ++hh)
                    rope(&k[size_t(t)][size_t(hh * head_dim)], t);
            }
            for (int t = 0; t < n; ++t) {
                std::vector<double> att(size_t(q_dim), 0.0);
                for (int hh = 0; hh < n_head; ++hh) {
                    const int kvh = hh / (n_head / n_head_kv);
                    std::vector<double> s(size_t(t + 1));
                    double mx = -1e300;
                    for (int j = 0; j <= t; ++j) {
                        double d = 0;
                        for (int i = 0; i < head_dim; ++i)
                            d += q[size_t(t)][size_t(hh * head_dim + i)] *
                                 k[size_t(j)][size_t(kvh * head_dim + i)];
                        s[size_t(j)] = d / std::sqrt(double(head_dim));
                        mx = std::max(mx, s[size_t(j)]);
                    }
                    double sum = 0;
                    for (double& e : s) sum += e = std::exp(e - mx);
                    for (int j = 0; j <= t; ++j)
                        for (int i = 0; i < head_dim; ++i)
                            att[size_t(hh * head_dim + i)] +=
                                s[size_t(j)] / sum * v[size_t(j)][size_t(kvh * head_dim + i)];
                }
                std::vector<double> o = matvec(L.wo, att, n_embd);
                for (int i = 0; i < n_embd; ++i) x[size_t(t)][size_t(i)] += o[size_t(i)];
                std::vector<double> h = norm(x[size_t(t)], L.ffn_norm);
                std::vector<double> g = matvec(L.gate, h, n_ff), u = matvec(L.up, h, n_ff);
                for (int i = 0; i < n_ff; ++i)
                    g[size_t(i)] = g[size_t(i)] / (1.0 + std::exp(-g[size_t(i)])) * u[size_t(i)];
                std::vector<double> d = matvec(L.down, g, n_embd);
                for (int i = 0; i < n_embd; ++i) x[size_t(t)][size_t(i)] += d[size_t(i)];
            }
        }
        std::vector<float> out_logits;
        for (int t = 0; t < n; ++t) {
            std::vector<double> l = matvec(out, norm(x[size_t(t)], out_norm), n_vocab);
            out_logits.insert(out_logits.end(), l.begin(), l.end());
        }
        return out_logits;
    }
};

// Cosine similarity of two equally long float ranges.
inline double cosine(const float* a, const float* b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

}  // namespace ragd::test
