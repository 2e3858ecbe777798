#include "generate/bert.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "config/config.h"
#include "generate/model_checks.h"
#include "generate/ops.h"
#include "generate/quant.h"

// Forward pass per layer (post-norm, as BERT):
//   x = LN(x + Wo·attn(Wq·x + bq, Wk·x + bk, Wv·x + bv) + bo)
//   x = LN(x + Wdown·gelu(Wup·x + bup) + bdown)
// with the input x = LN(token_embd[id] + token_types[type] + position_embd[pos]).
// nomic-bert: fused QKV, rotary positions (NeoX pairs) instead of position embeddings,
// SwiGLU feed-forward (silu(Wgate·x) * Wup·x), biases only where the file has them.
//
// GELU is the exact one (x/2 · (1 + erf(x/√2))), as BERT's "gelu" activation; llama.cpp
// uses the tanh approximation, which differs by less than 1e-3 at any input.

namespace ragd {

namespace {

using model_checks::corrupt;
using model_checks::dims;
using model_checks::positive;

void check_type(const gguf::Tensor& t) {
    const gguf::TypeInfo* ti = gguf::type_info(uint32_t(t.type));
    if (!ti || !ti->supported || t.type == gguf::Type::Q8_K)
        throw Error(Error::Code::Unsupported, "model: tensor '" + t.name + "' has type " +
                                                  (ti ? ti->name : "unknown") +
                                                  ", which the engine does not compute with");
}

}  // namespace

const char* pooling_name(Pooling p) {
    switch (p) {
        case Pooling::None:
            return "none";
        case Pooling::Mean:
            return "mean";
        case Pooling::Cls:
            return "cls";
        case Pooling::Last:
            return "last";
        case Pooling::Rank:
            return "rank";
    }
    return "unknown";
}

Pooling parse_pooling(const std::string& name) {
    for (Pooling p : {Pooling::None, Pooling::Mean, Pooling::Cls, Pooling::Last, Pooling::Rank})
        if (name == pooling_name(p)) return p;
    throw Error(Error::Code::InvalidArgument,
                "unknown pooling '" + name + "' (mean, cls, last, none or rank)");
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

struct BertLayer {
    // bert: wq, wk, wv; nomic-bert: wqkv (rows q, then k, then v).
    const gguf::Tensor *wq = nullptr, *wk = nullptr, *wv = nullptr, *wqkv = nullptr;
    const gguf::Tensor *wo = nullptr, *up = nullptr, *gate = nullptr, *down = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bqkv = nullptr, *bo = nullptr;
    const float *bup = nullptr, *bgate = nullptr, *bdown = nullptr;
    const float *attn_norm_w = nullptr, *attn_norm_b = nullptr;  // after attention
    const float *out_norm_w = nullptr, *out_norm_b = nullptr;    // after the FFN
};

struct BertModel::Impl {
    gguf::File file;
    BertParams p;
    std::unique_ptr<Tokenizer> tokenizer;
    std::vector<std::vector<float>> owned;

    bool nomic = false;
    float rope_theta = 10000.0f;
    int n_types = 0;  // rows of token_types.weight (0: none)
    const gguf::Tensor* token_embd = nullptr;
    const gguf::Tensor* token_types = nullptr;
    const gguf::Tensor* position_embd = nullptr;  // bert only
    const float *embd_norm_w = nullptr, *embd_norm_b = nullptr;
    std::vector<BertLayer> layers;
    // Classification head (rerankers): h = tanh(cls·x + cls_b), out = cls_out·h + cls_out_b.
    const gguf::Tensor *cls = nullptr, *cls_out = nullptr;
    const float *cls_b = nullptr, *cls_out_b = nullptr;

    explicit Impl(gguf::File f) : file(std::move(f)) {}

    const float* floats(const std::string& name, int64_t expected, bool required) {
        const gguf::Tensor* t = file.tensor(name);
        if (!t) {
            if (required) corrupt("tensor '" + name + "' is missing");
            return nullptr;
        }
        if (t->n_elements() != expected || t->ne[0] != expected)
            corrupt("tensor '" + name + "' has shape " + dims(*t) + ", expected [" +
                    std::to_string(expected) + "]");
        check_type(*t);
        std::vector<float> v(static_cast<size_t>(expected));
        quant::dequantize_row(t->type, t->data, v.data(), expected);
        owned.push_back(std::move(v));
        return owned.back().data();
    }

    const gguf::Tensor* matrix(const std::string& name, int64_t cols, int64_t rows, bool required) {
        const gguf::Tensor* t = file.tensor(name);
        if (!t) {
            if (required) corrupt("tensor '" + name + "' is missing");
            return nullptr;
        }
        if (t->n_dims > 2 || t->ne[0] != cols || t->ne[1] != rows)
            corrupt("tensor '" + name + "' has shape " + dims(*t) + ", expected [" +
                    std::to_string(cols) + ", " + std::to_string(rows) + "]");
        check_type(*t);
        return t;
    }
};

BertModel::BertModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BertModel::~BertModel() = default;

const BertParams& BertModel::params() const {
    return impl_->p;
}
const Tokenizer& BertModel::tokenizer() const {
    return *impl_->tokenizer;
}

std::unique_ptr<BertModel> BertModel::load(const std::string& path, gguf::Load how) {
    return from_file(gguf::File::open(path, how));
}

std::unique_ptr<BertModel> BertModel::from_file(gguf::File file) {
    auto impl = std::make_unique<Impl>(std::move(file));
    Impl& m = *impl;
    const gguf::File& f = m.file;
    BertParams& p = m.p;

    p.arch = f.get_string("general.architecture");
    if (p.arch != "bert" && p.arch != "nomic-bert")
        throw Error(Error::Code::Unsupported,
                    "model: architecture '" + p.arch +
                        "' is not an encoder the engine supports (bert, nomic-bert)");
    m.nomic = p.arch == "nomic-bert";
    p.name = f.get_string("general.name", p.arch);
    const std::string a = p.arch + ".";
    p.n_embd = positive(f, a + "embedding_length", 0, 1 << 16);
    p.n_layer = positive(f, a + "block_count", 0, 1024);
    p.n_ff = positive(f, a + "feed_forward_length", 0, 1 << 18);
    p.n_head = positive(f, a + "attention.head_count", 0, 1024);
    if (p.n_embd % p.n_head != 0)
        corrupt("embedding_length " + std::to_string(p.n_embd) +
                " is not a multiple of head_count " + std::to_string(p.n_head));
    if (f.get_int(a + "attention.head_count_kv", p.n_head) != p.n_head)
        throw Error(Error::Code::Unsupported, "model: grouped-query attention in an encoder");
    p.n_ctx_train = positive(f, a + "context_length", 512, 1 << 20);
    p.norm_eps = float(f.get_float(a + "attention.layer_norm_epsilon", 1e-12));
    if (!(p.norm_eps > 0 && p.norm_eps < 1)) corrupt("layer_norm_epsilon is out of range");
    if (f.get_bool(a + "attention.causal", false))
        throw Error(Error::Code::Unsupported, "model: causal attention in an encoder");
    int64_t pooling = f.get_int(a + "pooling_type", int64_t(Pooling::Cls));
    if (pooling < 0 || pooling > int64_t(Pooling::Rank))
        throw Error(Error::Code::Unsupported,
                    "model: pooling_type " + std::to_string(pooling) + " is not supported");
    p.pooling = Pooling(pooling);
    if (m.nomic) {
        m.rope_theta = float(f.get_float(a + "rope.freq_base", 1000.0));
        if (!(m.rope_theta > 1)) corrupt("rope.freq_base is out of range");
        const int hd = p.n_embd / p.n_head;
        if (hd % 2) corrupt("head size " + std::to_string(hd) + " is odd (rotary positions)");
        if (f.get_int(a + "rope.dimension_count", hd) != hd)
            throw Error(Error::Code::Unsupported, "model: partial rotary positions");
    }

    m.token_embd = f.tensor("token_embd.weight");
    if (!m.token_embd) corrupt("tensor 'token_embd.weight' is missing");
    p.n_vocab = int(std::min<int64_t>(m.token_embd->ne[1], INT32_MAX));
    const int D = p.n_embd, F = p.n_ff;
    m.matrix("token_embd.weight", D, p.n_vocab, true);
    m.token_types = f.tensor("token_types.weight");
    if (m.token_types) {
        m.n_types = int(std::min<int64_t>(m.token_types->ne[1], 1 << 16));
        m.matrix("token_types.weight", D, m.n_types, true);
    }
    if (!m.nomic) m.position_embd = m.matrix("position_embd.weight", D, p.n_ctx_train, true);
    m.embd_norm_w = m.floats("token_embd_norm.weight", D, true);
    m.embd_norm_b = m.floats("token_embd_norm.bias", D, true);

    const bool need_bias = !m.nomic;
    m.layers.resize(size_t(p.n_layer));
    for (int l = 0; l < p.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        BertLayer& w = m.layers[size_t(l)];
        if (m.nomic) {
            w.wqkv = m.matrix(b + "attn_qkv.weight", D, 3 * int64_t(D), true);
            w.bqkv = m.floats(b + "attn_qkv.bias", 3 * int64_t(D), false);
        } else {
            w.wq = m.matrix(b + "attn_q.weight", D, D, true);
            w.wk = m.matrix(b + "attn_k.weight", D, D, true);
            w.wv = m.matrix(b + "attn_v.weight", D, D, true);
            w.bq = m.floats(b + "attn_q.bias", D, need_bias);
            w.bk = m.floats(b + "attn_k.bias", D, need_bias);
            w.bv = m.floats(b + "attn_v.bias", D, need_bias);
        }
        w.wo = m.matrix(b + "attn_output.weight", D, D, true);
        w.bo = m.floats(b + "attn_output.bias", D, need_bias);
        w.attn_norm_w = m.floats(b + "attn_output_norm.weight", D, true);
        w.attn_norm_b = m.floats(b + "attn_output_norm.bias", D, true);
        w.up = m.matrix(b + "ffn_up.weight", D, F, true);
        w.bup = m.floats(b + "ffn_up.bias", F, need_bias);
        if (m.nomic) {
            w.gate = m.matrix(b + "ffn_gate.weight", D, F, true);
            w.bgate = m.floats(b + "ffn_gate.bias", F, false);
        }
        w.down = m.matrix(b + "ffn_down.weight", F, D, true);
        w.bdown = m.floats(b + "ffn_down.bias", D, need_bias);
        w.out_norm_w = m.floats(b + "layer_output_norm.weight", D, true);
        w.out_norm_b = m.floats(b + "layer_output_norm.bias", D, true);
    }

    // Classification head of cross-encoders (llama.cpp's names): cls.weight/bias, the
    // dense layer before tanh; cls.output.weight/bias, the projection to the labels.
    m.cls = m.matrix("cls.weight", D, D, false);
    if (m.cls) m.cls_b = m.floats("cls.bias", D, true);
    if (const gguf::Tensor* t = f.tensor("cls.output.weight")) {
        int64_t n_out = t->n_dims >= 2 ? t->ne[1] : 1;
        if (n_out <= 0 || n_out > (1 << 16))
            corrupt("tensor 'cls.output.weight' has shape " + dims(*t));
        m.cls_out = m.matrix("cls.output.weight", D, n_out, true);
        m.cls_out_b = m.floats("cls.output.bias", n_out, true);
        p.n_cls_out = int(n_out);
        std::vector<std::string_view> labels = f.get_strings(a + "classifier.output_labels");
        if (!labels.empty() && int64_t(labels.size()) != n_out)
            corrupt("classifier.output_labels has " + std::to_string(labels.size()) +
                    " labels but cls.output.weight " + std::to_string(n_out) + " rows");
    } else if (m.cls) {
        p.n_cls_out = 1;  // the score is the first output of tanh(cls·x + cls_b)
    } else if (f.tensor("cls.bias") || f.tensor("cls.output.bias")) {
        corrupt("a classification head bias without its weight");
    }
    if (p.pooling == Pooling::Rank && p.n_cls_out == 0)
        corrupt("pooling_type is rank but the file has no classification head (cls.weight)");

    m.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(f));
    if (m.tokenizer->n_vocab() > p.n_vocab)
        corrupt("the tokenizer has " + std::to_string(m.tokenizer->n_vocab()) +
                " tokens but token_embd.weight only " + std::to_string(p.n_vocab) + " rows");
    return std::unique_ptr<BertModel>(new BertModel(std::move(impl)));
}

// ---------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------

namespace {

// out = (x - mean) / sqrt(var + eps) * w + b, statistics in double.
void layernorm(float* out, const float* x, const float* w, const float* b, int n, float eps) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += x[i];
    const double mean = sum / n;
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
    const float scale = float(1.0 / std::sqrt(ss / n + eps)), fm = float(mean);
    for (int i = 0; i < n; ++i) out[i] = (x[i] - fm) * scale * w[i] + b[i];
}

// e^x for x <= 88, vectorisable (softmax and GELU run it millions of times per chunk):
// e^x = 2^n · 2^f with n = round(x log2 e) and |f| <= 1/2, 2^f by its Taylor series to
// degree 7 (relative error below 1e-8 from the series; float rounding dominates). Inputs
// below -87 give about 1e-38 instead of underflowing to 0.
__attribute__((always_inline)) inline float fast_exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    const float t = x * 1.44269504088896341f;
    const float fn = std::floor(t + 0.5f);
    const float f = (t - fn) * 0.693147180559945309f;
    float p = 1.0f / 5040;
    p = p * f + 1.0f / 720;
    p = p * f + 1.0f / 120;
    p = p * f + 1.0f / 24;
    p = p * f + 1.0f / 6;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f + 1.0f;
    const int32_t bits = (int32_t(fn) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// x[i] = e^(x[i] - shift); returns their sum.
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) float exp_shift_sum(float* x,
                                                                                     int n,
                                                                                     float shift) {
    float sum = 0;
    for (int i = 0; i < n; ++i) {
        x[i] = fast_exp(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

// y = gelu(y + bias) over n values: exact GELU up to the erf approximation of
// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void bias_gelu(float* y,
                                                                                const float* bias,
                                                                                int n) {
    for (int i = 0; i < n; ++i) {
        const float x = y[i] + (bias ? bias[i] : 0.0f);
        const float z = std::fabs(x) * 0.70710678118654752f;
        const float t = 1.0f / (1.0f + 0.3275911f * z);
        float poly = 1.061405429f;
        poly = poly * t - 1.453152027f;
        poly = poly * t + 1.421413741f;
        poly = poly * t - 0.284496736f;
        poly = poly * t + 0.254829592f;
        const float erf_abs = 1.0f - poly * t * fast_exp(-z * z);
        y[i] = 0.5f * x * (1.0f + (x < 0 ? -erf_abs : erf_abs));
    }
}

// matmul over token blocks: ops.h's matmul reads every weight row once per call and
// dots it with all the call's tokens, so with thousands of tokens (a batch of chunks)
// the activations no longer stay in cache. Blocks of kTokenBlock tokens keep them there,
// and each weight byte is still used kTokenBlock times per read.
int token_block() {
    static const int block = [] {
        const char* env = std::getenv("RAGD_BERT_TOKEN_BLOCK");
        int b = env ? std::atoi(env) : 0;
        return b > 0 ? b : 64;
    }();
    return block;
}

void matmul_blocked(ThreadPool& pool, const gguf::Tensor& w, const float* x, int n,
                    std::vector<uint8_t>& xq, float* out) {
    const int block = token_block();
    const int64_t cols = w.ne[0], rows = w.ne[1];
    for (int t0 = 0; t0 < n; t0 += block)
        matmul(pool, w, x + int64_t(t0) * cols, std::min(block, n - t0), xq,
               out + int64_t(t0) * rows);
}

}  // namespace

struct Encoder::Scratch {
    std::vector<float> x, xb, q, k, v, qkv, att, up, gate, head;
    std::vector<uint8_t> xq;
    std::vector<std::vector<float>> scores, kt, vt;  // per thread
    std::vector<float> inv_freq;                     // nomic-bert: per rotated pair
};

Encoder::Encoder(const BertModel& model, int n_threads)
    : model_(model),
      pool_(std::make_unique<ThreadPool>(n_threads)),
      scratch_(std::make_unique<Scratch>()) {
    const BertModel::Impl& m = *model.impl_;
    scratch_->scores.resize(size_t(pool_->size()));
    scratch_->kt.resize(size_t(pool_->size()));
    scratch_->vt.resize(size_t(pool_->size()));
    if (m.nomic) {
        const int hd = m.p.n_embd / m.p.n_head, half = hd / 2;
        for (int i = 0; i < half; ++i)
            scratch_->inv_freq.push_back(float(std::pow(double(m.rope_theta), -2.0 * i / hd)));
    }
}

Encoder::~Encoder() = default;

std::vector<int32_t> Encoder::tokenize(const std::string& text) const {
    const Tokenizer& tok = model_.tokenizer();
    std::vector<int32_t> ids = tok.encode(text, true, false);
    const size_t max = size_t(model_.params().n_ctx_train);
    if (ids.size() > max) {
        const int32_t last = ids.back();
        ids.resize(max);
        if (last == tok.eos()) ids.back() = last;  // keep [SEP]
    }
    return ids;
}

namespace {

// [CLS] q [SEP] d [SEP], truncated to max tokens: the longer of the two parts loses
// tokens from its end first. Returns the ids; *second is where d's segment starts.
std::vector<int32_t> pair_ids(const Tokenizer& tok, const std::string& q, const std::string& d,
                              size_t max, size_t* second) {
    std::vector<int32_t> a = tok.encode(q, false, false), b = tok.encode(d, false, false);
    const int32_t cls = tok.bos(), sep = tok.eos();
    const size_t specials = size_t(cls >= 0) + 2 * size_t(sep >= 0);
    const size_t room = max > specials ? max - specials : 0;
    while (a.size() + b.size() > room) {
        if (b.size() >= a.size())
            b.pop_back();
        else
            a.pop_back();
    }
    std::vector<int32_t> ids;
    if (cls >= 0) ids.push_back(cls);
    ids.insert(ids.end(), a.begin(), a.end());
    if (sep >= 0) ids.push_back(sep);
    *second = ids.size();
    ids.insert(ids.end(), b.begin(), b.end());
    if (sep >= 0) ids.push_back(sep);
    return ids;
}

}  // namespace

std::vector<int32_t> Encoder::tokenize_pair(const std::string& query,
                                            const std::string& doc) const {
    size_t second;
    return pair_ids(model_.tokenizer(), query, doc, size_t(model_.params().n_ctx_train), &second);
}

void Encoder::check(const std::vector<std::vector<int32_t>>& batch) const {
    const BertParams& p = model_.params();
    for (const auto& ids : batch) {
        if (ids.empty()) throw Error(Error::Code::InvalidArgument, "an empty token sequence");
        if (ids.size() > size_t(p.n_ctx_train))
            throw Error(Error::Code::InvalidArgument,
                        "a sequence of " + std::to_string(ids.size()) +
                            " tokens is longer than the model's context of " +
                            std::to_string(p.n_ctx_train));
        for (int32_t id : ids)
            if (id < 0 || id >= p.n_vocab)
                throw Error(Error::Code::InvalidArgument,
                            "token id " + std::to_string(id) + " is out of range");
    }
}

// Runs seqs [begin, end) of batch packed one after another; afterwards scratch x holds
// their output states (token rows in order). second[i] > 0: the segment of sequence i
// from that token on has token type 1 (sentence pairs).
void Encoder::run(const std::vector<std::vector<int32_t>>& batch, size_t begin, size_t end,
                  const std::vector<size_t>* second) {
    const BertModel::Impl& m = *model_.impl_;
    const BertParams& p = m.p;
    Scratch& s = *scratch_;
    ThreadPool& pool = *pool_;
    const int D = p.n_embd, F = p.n_ff, nh = p.n_head, hd = D / nh;

    std::vector<int> off;  // first token row of each sequence, and the total
    int n = 0, longest = 0;
    for (size_t i = begin; i < end; ++i) {
        off.push_back(n);
        n += int(batch[i].size());
        longest = std::max(longest, int(batch[i].size()));
    }
    off.push_back(n);
    const int n_seq = int(end - begin);

    auto fit = [](std::vector<float>& v, size_t size) {
        if (v.size() < size) v.resize(size);
    };
    fit(s.x, size_t(n) * D);
    fit(s.xb, size_t(n) * D);
    fit(s.att, size_t(n) * D);
    fit(s.up, size_t(n) * F);
    if (m.nomic) {
        fit(s.qkv, size_t(n) * 3 * D);
        fit(s.gate, size_t(n) * F);
    } else {
        fit(s.q, size_t(n) * D);
        fit(s.k, size_t(n) * D);
        fit(s.v, size_t(n) * D);
    }
    for (auto& sc : s.scores) fit(sc, size_t(longest));
    for (auto& kt : s.kt) fit(kt, size_t(longest) * size_t(hd));
    for (auto& vt : s.vt) fit(vt, size_t(longest) * size_t(hd));

    // Input: token + type (+ position) embeddings, then LayerNorm.
    pool.parallel_for(n_seq, 1, [&](int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(D));
        const size_t erb = gguf::row_bytes(m.token_embd->type, D);
        for (int64_t si = b; si < e; ++si) {
            const std::vector<int32_t>& ids = batch[begin + size_t(si)];
            const size_t seg = second ? (*second)[begin + size_t(si)] : 0;
            for (size_t t = 0; t < ids.size(); ++t) {
                float* x = &s.x[size_t(off[size_t(si)] + int(t)) * D];
                quant::dequantize_row(m.token_embd->type, m.token_embd->data + size_t(ids[t]) * erb,
                                      x, D);
                if (m.token_types) {
                    const int type = seg > 0 && t >= seg && m.n_types > 1 ? 1 : 0;
                    const size_t rb = gguf::row_bytes(m.token_types->type, D);
                    quant::dequantize_row(m.token_types->type,
                                          m.token_types->data + size_t(type) * rb, row.data(), D);
                    for (int i = 0; i < D; ++i) x[i] += row[size_t(i)];
                }
                if (m.position_embd) {
                    const size_t rb = gguf::row_bytes(m.position_embd->type, D);
                    quant::dequantize_row(m.position_embd->type, m.position_embd->data + t * rb,
                                          row.data(), D);
                    for (int i = 0; i < D; ++i) x[i] += row[size_t(i)];
                }
                layernorm(x, x, m.embd_norm_w, m.embd_norm_b, D, p.norm_eps);
            }
        }
    });

    // Adds bias (cols floats) to every row of y (n rows) and applies fn elementwise.
    auto rows_apply = [&](float* y, int cols, const float* bias, auto fn) {
        pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) {
                float* r = y + size_t(t) * size_t(cols);
                if (bias)
                    for (int i = 0; i < cols; ++i) r[i] = fn(r[i] + bias[i]);
                else
                    for (int i = 0; i < cols; ++i) r[i] = fn(r[i]);
            }
        });
    };
    auto ident = [](float v) { return v; };
    // x = LN(x + y + bias), row by row.
    auto residual_norm = [&](const float* y, const float* bias, const float* w, const float* b) {
        pool.parallel_for(n, 8, [&](int64_t rb, int64_t re) {
            for (int64_t t = rb; t < re; ++t) {
                float* x = &s.x[size_t(t) * D];
                const float* yr = y + size_t(t) * D;
                for (int i = 0; i < D; ++i) x[i] += yr[i] + (bias ? bias[i] : 0.0f);
                layernorm(x, x, w, b, D, p.norm_eps);
            }
        });
    };

    const float scale = 1.0f / std::sqrt(float(hd));
    for (int l = 0; l < p.n_layer; ++l) {
        const BertLayer& w = m.layers[size_t(l)];
        const float *qb, *kb, *vb;
        int stride;
        if (m.nomic) {
            matmul_blocked(pool, *w.wqkv, s.x.data(), n, s.xq, s.qkv.data());
            float* qkv = s.qkv.data();
            const int D3 = 3 * D;
            const float* bias = w.bqkv;
            // Biases, then rotary positions on q and k of every head (NeoX pairs).
            pool.parallel_for(n_seq, 1, [&](int64_t b, int64_t e) {
                const int half = hd / 2;
                for (int64_t si = b; si < e; ++si)
                    for (int t = off[size_t(si)]; t < off[size_t(si) + 1]; ++t) {
                        float* r = qkv + size_t(t) * D3;
                        if (bias)
                            for (int i = 0; i < D3; ++i) r[i] += bias[i];
                        const int pos = t - off[size_t(si)];
                        for (int h = 0; h < 2 * nh; ++h) {  // q heads, then k heads
                            float* v = r + size_t(h) * hd;
                            for (int i = 0; i < half; ++i) {
                                const float a = float(pos) * s.inv_freq[size_t(i)];
                                const float c = std::cos(a), sn = std::sin(a);
                                const float x0 = v[i], x1 = v[i + half];
                                v[i] = x0 * c - x1 * sn;
                                v[i + half] = x0 * sn + x1 * c;
                            }
                        }
                    }
            });
            qb = qkv;
            kb = qkv + D;
            vb = qkv + 2 * D;
            stride = D3;
        } else {
            matmul_blocked(pool, *w.wq, s.x.data(), n, s.xq, s.q.data());
            matmul_blocked(pool, *w.wk, s.x.data(), n, s.xq, s.k.data());
            matmul_blocked(pool, *w.wv, s.x.data(), n, s.xq, s.v.data());
            if (w.bq) rows_apply(s.q.data(), D, w.bq, ident);
            if (w.bk) rows_apply(s.k.data(), D, w.bk, ident);
            if (w.bv) rows_apply(s.v.data(), D, w.bv, ident);
            qb = s.q.data();
            kb = s.k.data();
            vb = s.v.data();
            stride = D;
        }

        // Attention within each sequence; work items are (sequence, head). The head's keys
        // and values are transposed into [hd][len] first, so that both products run as
        // long vector operations over the sequence: scores = Σ_d q[d]·K^T[d], then
        // out[d] = V^T[d]·softmax(scores).
        std::atomic<int> next{0};
        const int items = n_seq * nh;
        pool.run([&](int ith, int) {
            float* sc = s.scores[size_t(ith)].data();
            float* kt = s.kt[size_t(ith)].data();
            float* vt = s.vt[size_t(ith)].data();
            for (int item = next++; item < items; item = next++) {
                const int si = item / nh, h = item % nh;
                const int o = off[size_t(si)], len = off[size_t(si) + 1] - o;
                for (int j = 0; j < len; ++j) {
                    const float* k = kb + size_t(o + j) * stride + size_t(h) * hd;
                    const float* v = vb + size_t(o + j) * stride + size_t(h) * hd;
                    for (int d = 0; d < hd; ++d) {
                        kt[size_t(d) * len + size_t(j)] = k[d];
                        vt[size_t(d) * len + size_t(j)] = v[d];
                    }
                }
                for (int i = 0; i < len; ++i) {
                    const float* q = qb + size_t(o + i) * stride + size_t(h) * hd;
                    std::fill(sc, sc + len, 0.0f);
                    for (int d = 0; d < hd; ++d)
                        axpy_f32(sc, q[d] * scale, kt + size_t(d) * len, len);
                    const float mx = *std::max_element(sc, sc + len);
                    const float inv = 1.0f / exp_shift_sum(sc, len, mx);
                    float* out = &s.att[size_t(o + i) * D + size_t(h) * hd];
                    for (int d = 0; d < hd; ++d)
                        out[d] = dot_f32(vt + size_t(d) * len, sc, len) * inv;
                }
            }
        });
        matmul_blocked(pool, *w.wo, s.att.data(), n, s.xq, s.xb.data());
        residual_norm(s.xb.data(), w.bo, w.attn_norm_w, w.attn_norm_b);

        matmul_blocked(pool, *w.up, s.x.data(), n, s.xq, s.up.data());
        if (m.nomic) {
            matmul_blocked(pool, *w.gate, s.x.data(), n, s.xq, s.gate.data());
            const float *bu = w.bup, *bg = w.bgate;
            pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
                for (int64_t t = b; t < e; ++t) {
                    float* g = &s.gate[size_t(t) * F];
                    float* u = &s.up[size_t(t) * F];
                    for (int i = 0; bg && i < F; ++i) g[i] += bg[i];
                    for (int i = 0; bu && i < F; ++i) u[i] += bu[i];
                    swiglu(g, u, size_t(F));  // the product lands in gate
                }
            });
        } else {
            pool.parallel_for(n, 4, [&](int64_t b, int64_t e) {
                for (int64_t t = b; t < e; ++t) bias_gelu(&s.up[size_t(t) * F], w.bup, F);
            });
        }
        matmul_blocked(pool, *w.down, m.nomic ? s.gate.data() : s.up.data(), n, s.xq, s.xb.data());
        residual_norm(s.xb.data(), w.bdown, w.out_norm_w, w.out_norm_b);
    }
}

// Calls fn(first, last) for consecutive groups of sequences of at most batch_tokens
// tokens (a longer sequence alone), after run() has computed them.
template <typename Fn>
void Encoder::batched(const std::vector<std::vector<int32_t>>& seqs,
                      const std::vector<size_t>* second, Fn fn) {
    check(seqs);
    const size_t cap = size_t(std::max(1, batch_tokens));
    for (size_t b = 0; b < seqs.size();) {
        size_t e = b, tokens = 0;
        while (e < seqs.size() && (e == b || tokens + seqs[e].size() <= cap))
            tokens += seqs[e++].size();
        run(seqs, b, e, second);
        fn(b, e);
        b = e;
    }
}

std::vector<std::vector<float>> Encoder::forward(const std::vector<std::vector<int32_t>>& batch) {
    const int D = model_.params().n_embd;
    std::vector<std::vector<float>> out(batch.size());
    batched(batch, nullptr, [&](size_t b, size_t e) {
        size_t row = 0;
        for (size_t i = b; i < e; ++i) {
            const float* x = &scratch_->x[row * size_t(D)];
            out[i].assign(x, x + batch[i].size() * size_t(D));
            row += batch[i].size();
        }
    });
    return out;
}

std::vector<float> Encoder::embed(const std::vector<std::string>& texts, Pooling pooling,
                                  bool normalize) {
    std::vector<std::vector<int32_t>> seqs;
    seqs.reserve(texts.size());
    for (const std::string& t : texts) {
        seqs.push_back(tokenize(t));
        if (seqs.back().empty())
            throw Error(Error::Code::InvalidArgument,
                        "the model's tokenizer adds no [CLS] or [SEP] to an empty text");
    }
    return embed_ids(seqs, pooling, normalize);
}

std::vector<float> Encoder::embed_ids(const std::vector<std::vector<int32_t>>& seqs,
                                      Pooling pooling, bool normalize) {
    if (pooling == Pooling::Rank)
        throw Error(Error::Code::InvalidArgument, "rank pooling gives scores: use rerank");
    if (pooling == Pooling::None) pooling = model_.params().pooling;
    if (pooling == Pooling::None) pooling = Pooling::Mean;  // per-token models: mean
    if (pooling == Pooling::Rank) pooling = Pooling::Cls;   // rerankers: the [CLS] state
    const int D = model_.params().n_embd;
    std::vector<float> out(seqs.size() * size_t(D));
    batched(seqs, nullptr, [&](size_t b, size_t e) {
        size_t row = 0;
        for (size_t i = b; i < e; ++i) {
            const size_t len = seqs[i].size();
            const float* x = &scratch_->x[row * size_t(D)];
            float* v = &out[i * size_t(D)];
            if (pooling == Pooling::Mean) {
                for (int d = 0; d < D; ++d) {
                    double sum = 0;
                    for (size_t t = 0; t < len; ++t) sum += x[t * size_t(D) + size_t(d)];
                    v[d] = float(sum / double(len));
                }
            } else {
                const size_t t = pooling == Pooling::Cls ? 0 : len - 1;
                std::copy(x + t * size_t(D), x + (t + 1) * size_t(D), v);
            }
            if (normalize) {
                double ss = 0;
                for (int d = 0; d < D; ++d) ss += double(v[d]) * v[d];
                if (ss > 0) {
                    const float inv = float(1.0 / std::sqrt(ss));
                    for (int d = 0; d < D; ++d) v[d] *= inv;
                }
            }
            row += len;
        }
    });
    return out;
}

std::vector<float> Encoder::rerank(const std::string& query, const std::vector<std::string>& docs) {
    const BertModel::Impl& m = *model_.impl_;
    if (!model_.is_reranker())
        throw Error(Error::Code::InvalidArgument,
                    "model '" + m.p.name + "' has no classification head: it cannot rerank");
    const int D = m.p.n_embd;
    std::vector<std::vector<int32_t>> seqs;
    std::vector<size_t> second;
    for (const std::string& d : docs) {
        size_t sec = 0;
        seqs.push_back(pair_ids(model_.tokenizer(), query, d, size_t(m.p.n_ctx_train), &sec));
        second.push_back(sec);
    }
    std::vector<float> scores(docs.size());
    Scratch& s = *scratch_;
    batched(seqs, &second, [&](size_t b, size_t e) {
        const int n = int(e - b);
        std::vector<float> cls_rows(size_t(n) * size_t(D));
        size_t row = 0;
        for (size_t i = b; i < e; ++i) {
            std::copy_n(&s.x[row * size_t(D)], D, &cls_rows[(i - b) * size_t(D)]);
            row += seqs[i].size();
        }
        const float* h = cls_rows.data();
        std::vector<float> dense;
        if (m.cls) {
            dense.resize(cls_rows.size());
            matmul(*pool_, *m.cls, cls_rows.data(), n, s.xq, dense.data());
            for (int t = 0; t < n; ++t)
                for (int i = 0; i < D; ++i) {
                    float& v = dense[size_t(t) * D + size_t(i)];
                    v = std::tanh(v + m.cls_b[i]);
                }
            h = dense.data();
        }
        if (m.cls_out) {
            const int n_out = m.p.n_cls_out;
            std::vector<float> o(size_t(n) * size_t(n_out));
            matmul(*pool_, *m.cls_out, h, n, s.xq, o.data());
            for (int t = 0; t < n; ++t)
                scores[b + size_t(t)] = o[size_t(t) * n_out] + m.cls_out_b[0];
        } else {
            for (int t = 0; t < n; ++t) scores[b + size_t(t)] = h[size_t(t) * D];
        }
    });
    return scores;
}

}  // namespace ragd
