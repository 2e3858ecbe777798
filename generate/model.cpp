#include "generate/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "config/config.h"
#include "generate/attention.h"
#include "generate/model_checks.h"
#include "generate/ops.h"
#include "generate/quant.h"

namespace ragd {

namespace {

using model_checks::corrupt;
using model_checks::dims;
using model_checks::positive;

}  // namespace

Model::Model(gguf::File file) : file_(std::move(file)) {}

std::unique_ptr<Model> Model::load(const std::string& path, gguf::Load how) {
    return from_file(gguf::File::open(path, how));
}

const float* Model::floats(const std::string& name, int64_t expected, bool required) {
    const gguf::Tensor* t = file_.tensor(name);
    if (!t) {
        if (required) corrupt("tensor '" + name + "' is missing");
        return nullptr;
    }
    if (t->n_elements() != expected)
        corrupt("tensor '" + name + "' has shape " + dims(*t) + ", expected " +
                std::to_string(expected) + " elements");
    if (!gguf::type_info(uint32_t(t->type))->supported)
        throw Error(Error::Code::Unsupported, "model: tensor '" + name + "' has type " +
                                                  gguf::type_info(uint32_t(t->type))->name);
    std::vector<float> v(static_cast<size_t>(expected));
    quant::dequantize_row(t->type, t->data, v.data(), expected);
    owned_.push_back(std::move(v));
    return owned_.back().data();
}

std::vector<const gguf::Tensor*> Model::decode_matrices() const {
    std::vector<const gguf::Tensor*> ws;
    for (const LayerWeights& l : layers)
        for (const gguf::Tensor* w : {l.wq, l.wk, l.wv, l.wo, l.w_gate, l.w_up, l.w_down})
            ws.push_back(w);
    ws.push_back(output);
    return ws;
}

std::unique_ptr<Model> Model::from_file(gguf::File file) {
    std::unique_ptr<Model> m(new Model(std::move(file)));
    const gguf::File& f = m->file_;
    ModelParams& p = m->params_;

    p.arch = f.get_string("general.architecture");
    if (p.arch != "llama" && p.arch != "qwen2" && p.arch != "qwen3")
        throw Error(Error::Code::Unsupported,
                    "model: architecture '" + p.arch + "' is not supported (llama, qwen2, qwen3)");
    p.name = f.get_string("general.name", p.arch);
    const std::string a = p.arch + ".";
    p.n_embd = positive(f, a + "embedding_length", 0, 1 << 16);
    p.n_layer = positive(f, a + "block_count", 0, 1024);
    p.n_ff = positive(f, a + "feed_forward_length", 0, 1 << 18);
    p.n_head = positive(f, a + "attention.head_count", 0, 1024);
    p.n_head_kv = positive(f, a + "attention.head_count_kv", p.n_head, p.n_head);
    if (p.n_head % p.n_head_kv != 0)
        corrupt("head_count " + std::to_string(p.n_head) + " is not a multiple of head_count_kv " +
                std::to_string(p.n_head_kv));
    int default_hd = p.n_embd % p.n_head == 0 ? p.n_embd / p.n_head : 0;
    p.head_dim = positive(f, a + "attention.key_length", default_hd, 1 << 12);
    if (f.get_int(a + "attention.value_length", p.head_dim) != p.head_dim)
        throw Error(Error::Code::Unsupported, "model: key and value head sizes differ");
    p.n_ctx_train = positive(f, a + "context_length", 2048, 1 << 24);
    p.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
    if (!(p.rms_eps > 0 && p.rms_eps < 1)) corrupt("layer_norm_rms_epsilon is out of range");
    p.rope_theta = float(f.get_float(a + "rope.freq_base", 10000.0));
    if (!(p.rope_theta > 1)) corrupt("rope.freq_base is out of range");
    p.rope_dim = positive(f, a + "rope.dimension_count", p.head_dim, p.head_dim);
    if (p.rope_dim % 2) corrupt("rope.dimension_count is odd");
    p.rope_neox = p.arch != "llama";
    std::string scaling = f.get_string(a + "rope.scaling.type", "none");
    double factor =
        f.get_float(a + "rope.scaling.factor", f.get_float(a + "rope.scale_linear", 1.0));
    if (scaling == "linear" ||
        (scaling == "none" && factor != 1.0 && f.find(a + "rope.scale_linear"))) {
        if (!(factor >= 1 && factor <= 1024)) corrupt("rope scaling factor is out of range");
        p.rope_freq_scale = float(1.0 / factor);
    } else if (scaling != "none") {
        throw Error(Error::Code::Unsupported,
                    "model: rope scaling '" + scaling + "' is not supported");
    }

    m->token_embd = f.tensor("token_embd.weight");
    if (!m->token_embd) corrupt("tensor 'token_embd.weight' is missing");
    p.n_vocab = int(std::min<int64_t>(m->token_embd->ne[1], INT32_MAX));

    // Matrices: present, the expected shape, a type the kernels handle.
    auto matrix = [&](const std::string& name, int64_t cols, int64_t rows, bool required) {
        const gguf::Tensor* t = f.tensor(name);
        if (!t) {
            if (required) corrupt("tensor '" + name + "' is missing");
            return t;
        }
        if (t->n_dims > 2 || t->ne[0] != cols || t->ne[1] != rows)
            corrupt("tensor '" + name + "' has shape " + dims(*t) + ", expected [" +
                    std::to_string(cols) + ", " + std::to_string(rows) + "]");
        const gguf::TypeInfo* ti = gguf::type_info(uint32_t(t->type));
        if (!ti->supported || t->type == gguf::Type::Q8_K)
            throw Error(Error::Code::Unsupported, std::string("model: tensor '") + name +
                                                      "' has type " + ti->name +
                                                      ", which the engine does not compute with");
        return t;
    };
    const int64_t q_dim = int64_t(p.n_head) * p.head_dim,
                  kv_dim = int64_t(p.n_head_kv) * p.head_dim;
    matrix("token_embd.weight", p.n_embd, p.n_vocab, true);
    m->output = matrix("output.weight", p.n_embd, p.n_vocab, false);
    if (!m->output) m->output = m->token_embd;
    m->output_norm = m->floats("output_norm.weight", p.n_embd, true);
    m->rope_freqs = m->floats("rope_freqs.weight", p.rope_dim / 2, false);
    p.has_rope_freqs = m->rope_freqs != nullptr;

    m->layers.resize(size_t(p.n_layer));
    for (int l = 0; l < p.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& w = m->layers[size_t(l)];
        w.attn_norm = m->floats(b + "attn_norm.weight", p.n_embd, true);
        w.wq = matrix(b + "attn_q.weight", p.n_embd, q_dim, true);
        w.wk = matrix(b + "attn_k.weight", p.n_embd, kv_dim, true);
        w.wv = matrix(b + "attn_v.weight", p.n_embd, kv_dim, true);
        w.wo = matrix(b + "attn_output.weight", q_dim, p.n_embd, true);
        bool biases = p.arch == "qwen2";
        w.bq = m->floats(b + "attn_q.bias", q_dim, biases);
        w.bk = m->floats(b + "attn_k.bias", kv_dim, biases);
        w.bv = m->floats(b + "attn_v.bias", kv_dim, biases);
        bool qk_norm = p.arch == "qwen3";
        w.q_norm = m->floats(b + "attn_q_norm.weight", p.head_dim, qk_norm);
        w.k_norm = m->floats(b + "attn_k_norm.weight", p.head_dim, qk_norm);
        w.ffn_norm = m->floats(b + "ffn_norm.weight", p.n_embd, true);
        w.w_gate = matrix(b + "ffn_gate.weight", p.n_embd, p.n_ff, true);
        w.w_up = matrix(b + "ffn_up.weight", p.n_embd, p.n_ff, true);
        w.w_down = matrix(b + "ffn_down.weight", p.n_ff, p.n_embd, true);
    }

    m->tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(f));
    if (m->tokenizer_->n_vocab() > p.n_vocab)
        corrupt("the tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) +
                " tokens but token_embd.weight only " + std::to_string(p.n_vocab) + " rows");
    return m;
}

// ---------------------------------------------------------------------------------------
// Forward pass
// ---------------------------------------------------------------------------------------

namespace {

// Tokens per forward chunk: bounds the scratch memory of long prompts while keeping
// enough tokens per weight read for prefill to be compute-bound.
constexpr int kMaxBatch = 256;

}  // namespace

struct Sequence::Scratch {
    std::vector<float> x, xb, q, k, v, att, gate, up;
    std::vector<uint8_t> xq;           // activations in the weights' dot format
    std::vector<float> rope_inv_freq;  // per rotated pair
    struct AttentionRows {             // per thread: one work item's query rows
        attention::Workspace ws;
        std::vector<const float*> q;
        std::vector<float*> out;
        std::vector<int> n_pos;
    };
    std::vector<AttentionRows> attention;
};

const char* kv_type_name(KvType t) {
    return t == KvType::Q8 ? "q8" : "f32";
}

KvType parse_kv_type(const std::string& name) {
    if (name == "f32") return KvType::F32;
    if (name == "q8") return KvType::Q8;
    throw Error(Error::Code::InvalidArgument,
                "unknown KV cache type '" + name + "' (expected f32 or q8)");
}

Sequence::Sequence(const Model& model, int n_ctx, int n_threads, KvType kv_type)
    : model_(model), kv_type_(kv_type), scratch_(std::make_unique<Scratch>()) {
    const ModelParams& p = model.params();
    if (n_ctx <= 0) n_ctx = std::min(p.n_ctx_train, kDefaultContext);
    if (n_ctx > p.n_ctx_train)
        throw Error(Error::Code::InvalidArgument, "context of " + std::to_string(n_ctx) +
                                                      " tokens is longer than the model's " +
                                                      std::to_string(p.n_ctx_train));
    n_ctx_ = n_ctx;
    pool_ = std::make_unique<ThreadPool>(n_threads);
    n_ctx_alloc_ = (n_ctx_ + attention::kBlock - 1) / attention::kBlock * attention::kBlock;
    const size_t n_scales = size_t(p.n_layer) * size_t(p.n_head_kv) * size_t(n_ctx_alloc_);
    const size_t kv = n_scales * size_t(p.head_dim);
    if (kv_type_ == KvType::Q8) {
        k_q8_ = std::make_unique_for_overwrite<int8_t[]>(kv);
        v_q8_ = std::make_unique_for_overwrite<int8_t[]>(kv);
        k_scale_ = std::make_unique_for_overwrite<float[]>(n_scales);
        v_scale_ = std::make_unique_for_overwrite<float[]>(n_scales);
    } else {
        k_cache_ = std::make_unique_for_overwrite<float[]>(kv);
        v_cache_ = std::make_unique_for_overwrite<float[]>(kv);
    }
    scratch_->attention.resize(size_t(pool_->size()));
    int half = p.rope_dim / 2;
    scratch_->rope_inv_freq.resize(size_t(half));
    for (int i = 0; i < half; ++i) {
        double f = std::pow(double(p.rope_theta), -2.0 * i / p.rope_dim) * p.rope_freq_scale;
        if (model.rope_freqs) f /= model.rope_freqs[i];
        scratch_->rope_inv_freq[size_t(i)] = float(f);
    }
}

Sequence::~Sequence() = default;

size_t Sequence::kv_bytes() const {
    const ModelParams& p = model_.params();
    const size_t vectors = size_t(p.n_layer) * size_t(n_ctx_alloc_) * size_t(p.n_head_kv);
    const size_t per_vector = kv_type_ == KvType::Q8 ? size_t(p.head_dim) + sizeof(float)
                                                     : size_t(p.head_dim) * sizeof(float);
    return 2 * vectors * per_vector;
}

void Sequence::truncate(int n) {
    if (n < 0) n = 0;
    if (n < n_past_) {
        n_past_ = n;
        tokens_.resize(size_t(n));
    }
}

void Sequence::eval(const int32_t* tokens, int n, std::vector<float>* all_logits) {
    const ModelParams& p = model_.params();
    if (n <= 0) throw Error(Error::Code::InvalidArgument, "no tokens to evaluate");
    if (n > n_ctx_ - n_past_)
        throw Error(Error::Code::InvalidArgument,
                    "context full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                        " tokens exceed the context of " + std::to_string(n_ctx_));
    for (int i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= p.n_vocab)
            throw Error(Error::Code::InvalidArgument,
                        "token id " + std::to_string(tokens[i]) + " is out of range");
    for (int done = 0; done < n; done += kMaxBatch) {
        int m = std::min(kMaxBatch, n - done);
        forward(tokens + done, m, all_logits);
    }
}

namespace {

// Rotates pairs of dims in each head of vec (n_heads heads of head_dim) by pos * inv_freq.
void rope(float* vec, int n_heads, int head_dim, int rope_dim, bool neox, int pos,
          const float* inv_freq) {
    const int half = rope_dim / 2;
    for (int h = 0; h < n_heads; ++h) {
        float* v = vec + h * head_dim;
        for (int i = 0; i < half; ++i) {
            float angle = float(pos) * inv_freq[i];
            float c = std::cos(angle), s = std::sin(angle);
            int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
        }
    }
}

}  // namespace

void Sequence::forward(const int32_t* tokens, int n, std::vector<float>* all_logits) {
    const Model& m = model_;
    const ModelParams& p = m.params();
    Scratch& s = *scratch_;
    ThreadPool& pool = *pool_;
    const int D = p.n_embd, hd = p.head_dim, nh = p.n_head, nkv = p.n_head_kv;
    const int q_dim = nh * hd, kv_dim = nkv * hd, F = p.n_ff;
    auto fit = [&](std::vector<float>& v, size_t size) {
        if (v.size() < size) v.resize(size);
    };
    fit(s.x, size_t(n) * D);
    fit(s.xb, size_t(n) * std::max(D, q_dim));
    fit(s.q, size_t(n) * q_dim);
    fit(s.k, size_t(n) * kv_dim);
    fit(s.v, size_t(n) * kv_dim);
    fit(s.att, size_t(n) * q_dim);
    fit(s.gate, size_t(n) * F);
    fit(s.up, size_t(n) * F);

    const size_t erb = gguf::row_bytes(m.token_embd->type, D);
    for (int t = 0; t < n; ++t)
        quant::dequantize_row(m.token_embd->type, m.token_embd->data + size_t(tokens[t]) * erb,
                              s.x.data() + size_t(t) * D, D);

    const int p0 = n_past_;
    const float att_scale = 1.0f / std::sqrt(float(hd));
    for (int l = 0; l < p.n_layer; ++l) {
        const LayerWeights& w = m.layers[size_t(l)];
        for (int t = 0; t < n; ++t)
            rmsnorm(&s.xb[size_t(t) * D], &s.x[size_t(t) * D], w.attn_norm, D, p.rms_eps);
        const MatmulOut qkv[] = {{w.wq, s.q.data()}, {w.wk, s.k.data()}, {w.wv, s.v.data()}};
        matmul(pool, qkv, 3, s.xb.data(), n, s.xq);
        // This layer's cache, per KV head: n_ctx_alloc_ positions of head_dim elements
        // (keys transposed per block, see generate/attention.h) and, for Q8, one scale
        // per position.
        const bool q8 = kv_type_ == KvType::Q8;
        const size_t head_scales = size_t(n_ctx_alloc_), head_elems = head_scales * size_t(hd);
        auto elems_of = [&](int h) { return (size_t(l) * nkv + size_t(h)) * head_elems; };
        auto scales_of = [&](int h) { return (size_t(l) * nkv + size_t(h)) * head_scales; };
        auto kv_head = [&](int h) {
            attention::KvHead kv;
            kv.hd = hd;
            if (q8) {
                kv.k8 = k_q8_.get() + elems_of(h), kv.v8 = v_q8_.get() + elems_of(h);
                kv.k_scale = k_scale_.get() + scales_of(h),
                kv.v_scale = v_scale_.get() + scales_of(h);
            } else {
                kv.k = k_cache_.get() + elems_of(h), kv.v = v_cache_.get() + elems_of(h);
            }
            return kv;
        };
        for (int t = 0; t < n; ++t) {
            float* q = &s.q[size_t(t) * q_dim];
            float* k = &s.k[size_t(t) * kv_dim];
            float* v = &s.v[size_t(t) * kv_dim];
            if (w.bq) {
                for (int i = 0; i < q_dim; ++i) q[i] += w.bq[i];
                for (int i = 0; i < kv_dim; ++i) k[i] += w.bk[i], v[i] += w.bv[i];
            }
            if (w.q_norm) {
                for (int h = 0; h < nh; ++h)
                    rmsnorm(q + h * hd, q + h * hd, w.q_norm, hd, p.rms_eps);
                for (int h = 0; h < nkv; ++h)
                    rmsnorm(k + h * hd, k + h * hd, w.k_norm, hd, p.rms_eps);
            }
            rope(q, nh, hd, p.rope_dim, p.rope_neox, p0 + t, s.rope_inv_freq.data());
            rope(k, nkv, hd, p.rope_dim, p.rope_neox, p0 + t, s.rope_inv_freq.data());
            for (int h = 0; h < nkv; ++h)
                attention::store(kv_head(h), p0 + t, k + h * hd, v + h * hd);
        }
        // Causal attention: token t sees positions 0 .. p0 + t. A work item is one KV head
        // and a block of tokens: their query rows (tokens x the heads of the group) go
        // through attention::attend together, so each key and value block is read once
        // per item. Items with later tokens cost more and are taken first.
        const int group = nh / nkv;
        const int tokens_per_item = std::max(1, 64 / group);
        const int n_blocks = (n + tokens_per_item - 1) / tokens_per_item;
        std::atomic<int> next{0};
        pool.run([&](int ith, int) {
            Scratch::AttentionRows& a = s.attention[size_t(ith)];
            for (int item;
                 (item = next.fetch_add(1, std::memory_order_relaxed)) < n_blocks * nkv;) {
                const int tb = n_blocks - 1 - item / nkv, kvh = item % nkv;
                const int t0 = tb * tokens_per_item, t1 = std::min(n, t0 + tokens_per_item);
                a.q.clear(), a.out.clear(), a.n_pos.clear();
                for (int t = t0; t < t1; ++t)
                    for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                        const size_t at = size_t(t) * q_dim + size_t(h) * hd;
                        a.q.push_back(&s.q[at]);
                        a.out.push_back(&s.att[at]);
                        a.n_pos.push_back(p0 + t + 1);
                    }
                attention::Rows rows;
                rows.n = int(a.q.size());
                rows.q = a.q.data(), rows.out = a.out.data(), rows.n_pos = a.n_pos.data();
                attention::attend(kv_head(kvh), rows, att_scale, a.ws);
            }
        });
        matmul(pool, *w.wo, s.att.data(), n, s.xq, s.xb.data());
        for (size_t i = 0; i < size_t(n) * D; ++i) s.x[i] += s.xb[i];

        for (int t = 0; t < n; ++t)
            rmsnorm(&s.xb[size_t(t) * D], &s.x[size_t(t) * D], w.ffn_norm, D, p.rms_eps);
        const MatmulOut gate_up[] = {{w.w_gate, s.gate.data()}, {w.w_up, s.up.data()}};
        matmul(pool, gate_up, 2, s.xb.data(), n, s.xq);
        swiglu(s.gate.data(), s.up.data(), size_t(n) * F);
        matmul(pool, *w.w_down, s.gate.data(), n, s.xq, s.xb.data());
        for (size_t i = 0; i < size_t(n) * D; ++i) s.x[i] += s.xb[i];
    }

    // Logits: of every position when asked, else of the last one only.
    const int first = all_logits ? 0 : n - 1;
    const int n_out = n - first;
    for (int t = first; t < n; ++t)
        rmsnorm(&s.xb[size_t(t - first) * D], &s.x[size_t(t) * D], m.output_norm, D, p.rms_eps);
    std::vector<float> out(size_t(n_out) * p.n_vocab);
    matmul(pool, *m.output, s.xb.data(), n_out, s.xq, out.data());
    logits_.assign(out.end() - p.n_vocab, out.end());
    if (all_logits) all_logits->insert(all_logits->end(), out.begin(), out.end());

    tokens_.insert(tokens_.end(), tokens, tokens + n);
    n_past_ += n;
}

}  // namespace ragd
