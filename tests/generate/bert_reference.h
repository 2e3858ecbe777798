// tests/generate/bert_reference: the bert / nomic-bert encoder written as plainly as
// possible, to check generate/bert.cpp against. Every weight is converted to float up
// front, every sequence is run on its own, sums are in double; nothing is shared with
// the engine but the block decoders of generate/quant (checked in quant_test).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "generate/gguf.h"
#include "generate/quant.h"

namespace ragd::test {

struct BertReference {
    struct Matrix {
        std::vector<float> w;  // rows × cols, row-major
        int rows = 0, cols = 0;
        gguf::Type act = gguf::Type::F32;  // the format the engine rounds inputs to
        bool empty() const { return w.empty(); }
    };
    struct Layer {
        Matrix wq, wk, wv, wqkv, wo, up, gate, down;
        std::vector<float> bq, bk, bv, bqkv, bo, bup, bgate, bdown;
        std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    };

    std::string arch;
    int n_embd = 0, n_head = 0, n_ff = 0, n_layer = 0;
    double eps = 1e-12, theta = 1000;
    int pooling = 2;
    Matrix tok, types, pos;
    std::vector<float> ln0_w, ln0_b;
    std::vector<Layer> layers;
    Matrix cls, cls_out;
    std::vector<float> cls_b, cls_out_b;
    // As in reference_forward.h: round each matrix input through the engine's activation
    // format (Q8_0 / Q8_K for quantized weights).
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
        return {floats(f, name), int(t->ne[1]), int(t->ne[0]), quant::vec_dot_type(t->type)};
    }

    explicit BertReference(const gguf::File& f) {
        arch = f.get_string("general.architecture");
        const std::string a = arch + ".";
        n_embd = int(f.get_int(a + "embedding_length", 0));
        n_head = int(f.get_int(a + "attention.head_count", 0));
        n_ff = int(f.get_int(a + "feed_forward_length", 0));
        n_layer = int(f.get_int(a + "block_count", 0));
        eps = f.get_float(a + "attention.layer_norm_epsilon", 1e-12);
        theta = f.get_float(a + "rope.freq_base", 1000);
        pooling = int(f.get_int(a + "pooling_type", 2));
        tok = matrix(f, "token_embd.weight");
        types = matrix(f, "token_types.weight");
        pos = matrix(f, "position_embd.weight");
        ln0_w = floats(f, "token_embd_norm.weight");
        ln0_b = floats(f, "token_embd_norm.bias");
        for (int l = 0; l < n_layer; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            Layer L;
            L.wq = matrix(f, b + "attn_q.weight");
            L.wk = matrix(f, b + "attn_k.weight");
            L.wv = matrix(f, b + "attn_v.weight");
            L.wqkv = matrix(f, b + "attn_qkv.weight");
            L.wo = matrix(f, b + "attn_output.weight");
            L.up = matrix(f, b + "ffn_up.weight");
            L.gate = matrix(f, b + "ffn_gate.weight");
            L.down = matrix(f, b + "ffn_down.weight");
            L.bq = floats(f, b + "attn_q.bias");
            L.bk = floats(f, b + "attn_k.bias");
            L.bv = floats(f, b + "attn_v.bias");
            L.bqkv = floats(f, b + "attn_qkv.bias");
            L.bo = floats(f, b + "attn_output.bias");
            L.bup = floats(f, b + "ffn_up.bias");
            L.bgate = floats(f, b + "ffn_gate.bias");
            L.bdown = floats(f, b + "ffn_down.bias");
            L.ln1_w = floats(f, b + "attn_output_norm.weight");
            L.ln1_b = floats(f, b + "attn_output_norm.bias");
            L.ln2_w = floats(f, b + "layer_output_norm.weight");
            L.ln2_b = floats(f, b + "layer_output_norm.bias");
            layers.push_back(std::move(L));
        }
        cls = matrix(f, "cls.weight");
        cls_b = floats(f, "cls.bias");
        cls_out = matrix(f, "cls.output.weight");
        cls_out_b = floats(f, "cls.output.bias");
    }

    using Vec = std::vector<double>;

    // W x (+ b).
    Vec linear(const Matrix& m, Vec x, const std::vector<float>& b) const {
        if (quantize_activations && m.act != gguf::Type::F32) {
            std::vector<float> xf(x.begin(), x.end()), back(x.size());
            std::vector<uint8_t> q(gguf::row_bytes(m.act, int64_t(x.size())));
            quant::quantize_row(m.act, xf.data(), q.data(), int64_t(x.size()));
            quant::dequantize_row(m.act, q.data(), back.data(), int64_t(x.size()));
            x.assign(back.begin(), back.end());
        }
        Vec y(size_t(m.rows), 0.0);
        for (int r = 0; r < m.rows; ++r) {
            double acc = 0;
            for (int c = 0; c < m.cols; ++c)
                acc += double(m.w[size_t(r) * size_t(m.cols) + size_t(c)]) * x[size_t(c)];
            y[size_t(r)] = acc + (b.empty() ? 0.0 : double(b[size_t(r)]));
        }
        return y;
    }
    Vec layer_norm(const Vec& x, const std::vector<float>& w, const std::vector<float>& b) const {
        double mean = 0;
        for (double v : x) mean += v;
        mean /= double(x.size());
        double var = 0;
        for (double v : x) var += (v - mean) * (v - mean);
        var /= double(x.size());
        Vec y(x.size());
        for (size_t i = 0; i < x.size(); ++i)
            y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
        return y;
    }
    Vec row(const Matrix& m, int r) const {
        return Vec(m.w.begin() + long(r) * m.cols, m.w.begin() + long(r + 1) * m.cols);
    }

    // Output states of one sequence: n × n_embd. Tokens from `second` on (if > 0) have
    // token type 1, as the second text of a pair.
    std::vector<Vec> states(const std::vector<int32_t>& ids, size_t second = 0) const {
        const size_t n = ids.size();
        const int D = n_embd, hd = n_embd / n_head;
        const bool nomic = arch == "nomic-bert";
        std::vector<Vec> x(n);
        for (size_t t = 0; t < n; ++t) {
            Vec e = row(tok, ids[t]);
            if (!types.empty()) {
                Vec ty = row(types, second > 0 && t >= second && types.rows > 1 ? 1 : 0);
                for (int i = 0; i < D; ++i) e[size_t(i)] += ty[size_t(i)];
            }
            if (!pos.empty()) {
                Vec p = row(pos, int(t));
                for (int i = 0; i < D; ++i) e[size_t(i)] += p[size_t(i)];
            }
            x[t] = layer_norm(e, ln0_w, ln0_b);
        }
        for (const Layer& L : layers) {
            std::vector<Vec> q(n), k(n), v(n);
            for (size_t t = 0; t < n; ++t) {
                if (nomic) {
                    Vec qkv = linear(L.wqkv, x[t], L.bqkv);
                    q[t].assign(qkv.begin(), qkv.begin() + D);
                    k[t].assign(qkv.begin() + D, qkv.begin() + 2 * D);
                    v[t].assign(qkv.begin() + 2 * D, qkv.end());
                    for (int h = 0; h < n_head; ++h) {  // rotary, pairs (i, i + hd/2)
                        for (int i = 0; i < hd / 2; ++i) {
                            double ang = double(t) * std::pow(theta, -2.0 * i / hd);
                            for (Vec* vec : {&q[t], &k[t]}) {
                                double& a = (*vec)[size_t(h * hd + i)];
                                double& b = (*vec)[size_t(h * hd + i + hd / 2)];
                                double a0 = a, b0 = b;
                                a = a0 * std::cos(ang) - b0 * std::sin(ang);
                                b = a0 * std::sin(ang) + b0 * std::cos(ang);
                            }
                        }
                    }
                } else {
                    q[t] = linear(L.wq, x[t], L.bq);
                    k[t] = linear(L.wk, x[t], L.bk);
                    v[t] = linear(L.wv, x[t], L.bv);
                }
            }
            for (size_t t = 0; t < n; ++t) {
                Vec att(size_t(D), 0.0);
                for (int h = 0; h < n_head; ++h) {
                    Vec s(n);
                    double mx = -1e300;
                    for (size_t j = 0; j < n; ++j) {
                        double d = 0;
                        for (int i = 0; i < hd; ++i)
                            d += q[t][size_t(h * hd + i)] * k[j][size_t(h * hd + i)];
                        s[j] = d / std::sqrt(double(hd));
                        mx = std::max(mx, s[j]);
                    }
                    double sum = 0;
                    for (double& e : s) sum += e = std::exp(e - mx);
                    for (size_t j = 0; j < n; ++j)
                        for (int i = 0; i < hd; ++i)
                            att[size_t(h * hd + i)] += s[j] / sum * v[j][size_t(h * hd + i)];
                }
                Vec o = linear(L.wo, att, L.bo);
                for (int i = 0; i < D; ++i) o[size_t(i)] += x[t][size_t(i)];
                x[t] = layer_norm(o, L.ln1_w, L.ln1_b);
            }
            for (size_t t = 0; t < n; ++t) {
                Vec u = linear(L.up, x[t], L.bup);
                if (nomic) {
                    Vec g = linear(L.gate, x[t], L.bgate);
                    for (size_t i = 0; i < u.size(); ++i) u[i] *= g[i] / (1.0 + std::exp(-g[i]));
                } else {
                    for (double& e : u) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
                }
                Vec d = linear(L.down, u, L.bdown);
                for (int i = 0; i < D; ++i) d[size_t(i)] += x[t][size_t(i)];
                x[t] = layer_norm(d, L.ln2_w, L.ln2_b);
            }
        }
        return x;
    }

    // Pooled (1 mean, 2 cls, 3 last), optionally L2-normalised.
    std::vector<float> embed(const std::vector<int32_t>& ids, int pool, bool normalize) const {
        std::vector<Vec> x = states(ids);
        Vec p(size_t(n_embd), 0.0);
        if (pool == 1) {
            for (const Vec& r : x)
                for (int i = 0; i < n_embd; ++i) p[size_t(i)] += r[size_t(i)] / double(x.size());
        } else {
            p = pool == 2 ? x.front() : x.back();
        }
        double ss = 0;
        for (double e : p) ss += e * e;
        std::vector<float> out;
        for (double e : p) out.push_back(float(normalize ? e / std::sqrt(ss) : e));
        return out;
    }

    // The reranker's score of a pair already tokenized as [CLS] q [SEP] d [SEP].
    double score(const std::vector<int32_t>& ids, size_t second) const {
        Vec h = states(ids, second).front();
        if (!cls.empty()) {
            h = linear(cls, h, cls_b);
            for (double& e : h) e = std::tanh(e);
        }
        if (!cls_out.empty()) h = linear(cls_out, h, cls_out_b);
        return h[0];
    }
};

}  // namespace ragd::test
