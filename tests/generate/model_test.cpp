// The engine's forward pass against the plain reference forward pass, for every
// architecture and weight type, and KV-cached decoding against a full recompute.
#include "generate/model.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "generate/sampler.h"
#include "tests/generate/model_writer.h"
#include "tests/generate/reference_forward.h"

namespace ragd {
namespace {

using gguf::Type;
using test::ModelSpec;

std::unique_ptr<Model> build(const ModelSpec& spec) {
    std::vector<uint8_t> bytes = test::make_model(spec).bytes();
    return Model::from_file(gguf::File::parse(bytes.data(), bytes.size()));
}

std::vector<int32_t> random_tokens(int n, int n_vocab, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& id : t) id = int32_t(rng() % uint64_t(n_vocab));
    return t;
}

struct Case {
    const char* name;
    ModelSpec spec;
    double min_cosine;          // against the reference, at every position
    double min_cosine_rounded;  // against the reference with 8-bit rounded activations
    float tie_margin;           // top-2 logit gap below which a different argmax is a tie
};

ModelSpec spec_of(const char* arch, Type matrices, Type embd, Type out) {
    ModelSpec s;
    s.arch = arch;
    s.matrix_type = matrices;
    s.embd_type = embd;
    s.output_type = out;
    return s;
}

std::vector<Case> cases() {
    std::vector<Case> c;
    for (const char* arch : {"llama", "qwen2", "qwen3"}) {
        c.push_back({"F32", spec_of(arch, Type::F32, Type::F32, Type::F32), 0.9999, 0.9999, 0.0f});
        c.push_back({"F16", spec_of(arch, Type::F16, Type::F16, Type::F16), 0.9999, 0.9999, 0.0f});
        c.push_back(
            {"BF16", spec_of(arch, Type::BF16, Type::F32, Type::BF16), 0.9999, 0.9999, 0.0f});
        c.push_back(
            {"Q8_0", spec_of(arch, Type::Q8_0, Type::Q8_0, Type::Q8_0), 0.999, 0.9998, 0.02f});
        c.push_back(
            {"Q4_0", spec_of(arch, Type::Q4_0, Type::Q4_0, Type::Q6_K), 0.999, 0.9998, 0.02f});
        c.push_back(
            {"Q4_K", spec_of(arch, Type::Q4_K, Type::Q4_K, Type::Q6_K), 0.999, 0.9998, 0.02f});
        c.push_back(
            {"Q5_K", spec_of(arch, Type::Q5_K, Type::Q5_K, Type::Q8_0), 0.999, 0.9998, 0.02f});
        c.push_back(
            {"Q6_K", spec_of(arch, Type::Q6_K, Type::Q6_K, Type::Q6_K), 0.999, 0.9998, 0.02f});
    }
    // A Q4_K_M-like mix: most matrices Q4_K, ffn_down and attn_v Q6_K, tied output.
    ModelSpec mix = spec_of("llama", Type::Q4_K, Type::Q4_K, Type::Q6_K);
    mix.overrides = {{"ffn_down", Type::Q6_K}, {"attn_v", Type::Q6_K}};
    mix.tied_output = true;
    c.push_back({"Q4_K_M-mix-tied", mix, 0.999, 0.9998, 0.02f});
    // Wider heads than n_embd / n_head (qwen3 sets key_length), and linear rope scaling.
    ModelSpec wide = spec_of("qwen3", Type::F32, Type::F32, Type::F32);
    wide.head_dim = 128;
    wide.rope_scale_linear = 4;
    c.push_back({"F32-headdim128-ropelinear", wide, 0.9999, 0.9999, 0.0f});
    ModelSpec freqs = spec_of("llama", Type::F16, Type::F16, Type::F16);
    freqs.rope_freqs = true;
    c.push_back({"F16-rope-freqs", freqs, 0.9999, 0.9999, 0.0f});
    return c;
}

// Every position of a 64-token sequence, in one batch, agrees with the reference. With
// exact activations: cosine >= 0.9999 for float weights, >= 0.999 for quantized ones.
// The engine rounds activations to 8 bits before quantized products, so it is also
// compared with a reference that rounds the same way: cosine >= 0.9998, and the same top
// token at every position, except where the reference's two best logits are closer
// than 0.02 (6% of the logits' standard deviation in these models, about twice the
// largest logit error seen): random weights give such near-ties a few times in 64
// positions, and 8-bit rounding of slightly different inputs may break them either way.
// Float weights must give the same top token everywhere.
TEST(Model, MatchesReferenceForEveryArchitectureAndType) {
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.spec.arch + " " + c.name);
        std::vector<uint8_t> bytes = test::make_model(c.spec).bytes();
        gguf::File file = gguf::File::parse(bytes.data(), bytes.size());
        std::unique_ptr<Model> model = Model::from_file(file);
        test::ReferenceModel ref(file);
        const int V = model->params().n_vocab;
        std::vector<int32_t> tokens = random_tokens(64, V, 7);
        std::vector<float> expect = ref.logits(tokens);
        ref.quantize_activations = true;
        std::vector<float> rounded = ref.logits(tokens);
        Sequence seq(*model, 256, 2);
        std::vector<float> got;
        seq.eval(tokens, &got);
        ASSERT_EQ(got.size(), expect.size());
        double worst = 1, worst_rounded = 1;
        int argmax_diff = 0, near_ties = 0;
        for (size_t t = 0; t < tokens.size(); ++t) {
            const float* g = &got[t * size_t(V)];
            const float* e = &expect[t * size_t(V)];
            const float* r = &rounded[t * size_t(V)];
            worst_rounded = std::min(worst_rounded, test::cosine(g, r, size_t(V)));
            worst = std::min(worst, test::cosine(g, e, size_t(V)));
            if (std::max_element(g, g + V) - g != std::max_element(r, r + V) - r) {
                std::vector<float> top(r, r + V);
                std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
                (top[0] - top[1] < c.tie_margin ? near_ties : argmax_diff) += 1;
            }
        }
        EXPECT_GE(worst, c.min_cosine);
        EXPECT_GE(worst_rounded, c.min_cosine_rounded);
        EXPECT_EQ(argmax_diff, 0) << "positions whose top token differs from the reference"
                                  << " (besides " << near_ties << " near-ties)";
        // The last position's logits are also what logits() reports.
        EXPECT_TRUE(std::equal(seq.logits().begin(), seq.logits().end(), got.end() - V));
    }
}

// Decoding one token at a time from the KV cache gives what one batch over the whole
// sequence gives, and so do uneven chunks.
TEST(Model, CachedDecodingMatchesFullRecompute) {
    for (Type t : {Type::F32, Type::Q4_K}) {
        ModelSpec s = spec_of("qwen2", t, t, Type::Q6_K);
        std::unique_ptr<Model> model = build(s);
        const int V = model->params().n_vocab;
        std::vector<int32_t> tokens = random_tokens(64, V, 11);
        Sequence full(*model, 128, 2);
        std::vector<float> all;
        full.eval(tokens, &all);

        Sequence step(*model, 128, 1);
        const int chunks[] = {5, 1, 1, 17, 1, 3, 36};
        size_t pos = 0;
        for (int len : chunks) {
            step.eval(tokens.data() + pos, len);
            pos += size_t(len);
            const float* e = &all[(pos - 1) * size_t(V)];
            EXPECT_GE(test::cosine(step.logits().data(), e, size_t(V)), 0.999999)
                << "after " << pos;
            float max_diff = 0;
            for (int i = 0; i < V; ++i)
                max_diff = std::max(max_diff, std::fabs(step.logits()[size_t(i)] - e[i]));
            EXPECT_LE(max_diff, 1e-4f) << "after " << pos;
        }
        EXPECT_EQ(pos, tokens.size());
        EXPECT_EQ(step.n_past(), 64);
        EXPECT_EQ(step.tokens(), tokens);
    }
}

// The 8-bit KV cache: every step of a prompt and a cached decode stays within cosine
// 0.9995 of the float cache (per-vector int8 rounding of keys and values, about 0.4% of
// each vector's largest entry), picks the same greedy token, and takes close to a quarter
// of the memory.
TEST(Model, Q8KvCacheStaysCloseToF32) {
    for (const char* arch : {"llama", "qwen2", "qwen3"}) {
        std::unique_ptr<Model> model = build(spec_of(arch, Type::Q8_0, Type::F32, Type::Q8_0));
        const int V = model->params().n_vocab;
        std::vector<int32_t> tokens = random_tokens(96, V, 21);
        Sequence f32(*model, 128, 2, KvType::F32), q8(*model, 128, 2, KvType::Q8);
        EXPECT_EQ(q8.kv_type(), KvType::Q8);
        std::vector<float> all_f32, all_q8;
        f32.eval(tokens.data(), 64, &all_f32);
        q8.eval(tokens.data(), 64, &all_q8);
        double worst = 1;
        for (size_t t = 0; t < 64; ++t)
            worst = std::min(
                worst, test::cosine(&all_q8[t * size_t(V)], &all_f32[t * size_t(V)], size_t(V)));
        for (size_t i = 64; i < tokens.size(); ++i) {
            f32.eval(&tokens[i], 1);
            q8.eval(&tokens[i], 1);
            worst =
                std::min(worst, test::cosine(q8.logits().data(), f32.logits().data(), size_t(V)));
        }
        EXPECT_GE(worst, 0.9995) << arch;
        EXPECT_EQ(argmax(q8.logits().data(), V), argmax(f32.logits().data(), V)) << arch;
        EXPECT_LT(double(q8.kv_bytes()), 0.3 * double(f32.kv_bytes())) << arch;
    }
    EXPECT_EQ(parse_kv_type("q8"), KvType::Q8);
    EXPECT_EQ(parse_kv_type(kv_type_name(KvType::F32)), KvType::F32);
    EXPECT_THROW(parse_kv_type("q4"), Error);
}

// Truncating the cache and evaluating again reproduces the same logits (prefix reuse).
TEST(Model, TruncateThenReevaluate) {
    std::unique_ptr<Model> model = build(spec_of("llama", Type::Q8_0, Type::Q8_0, Type::Q8_0));
    std::vector<int32_t> tokens = random_tokens(40, model->params().n_vocab, 3);
    Sequence seq(*model, 64, 2);
    seq.eval(tokens);
    std::vector<float> expect = seq.logits();
    seq.truncate(25);
    EXPECT_EQ(seq.n_past(), 25);
    seq.eval(tokens.data() + 25, 15);
    EXPECT_EQ(seq.logits(), expect);
}

TEST(Model, ContextFullAndBadTokensLeaveTheSequenceUnchanged) {
    std::unique_ptr<Model> model = build(spec_of("llama", Type::F32, Type::F32, Type::F32));
    Sequence seq(*model, 16, 1);
    std::vector<int32_t> tokens = random_tokens(10, model->params().n_vocab, 5);
    seq.eval(tokens);
    std::vector<float> before = seq.logits();
    try {
        seq.eval(tokens);
        FAIL() << "expected a context-full error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
    }
    std::vector<int32_t> bad = {1, model->params().n_vocab};
    EXPECT_THROW(seq.eval(bad), Error);
    bad = {-1};
    EXPECT_THROW(seq.eval(bad), Error);
    EXPECT_EQ(seq.n_past(), 10);
    EXPECT_EQ(seq.logits(), before);
    EXPECT_THROW(Sequence(*model, model->params().n_ctx_train + 1, 1), Error);
}

// A model whose tensors disagree with its metadata is refused with a message naming the
// tensor, before anything runs.
TEST(Model, RefusesInconsistentFiles) {
    auto expect_error = [](test::GGUFWriter w, Error::Code code, const std::string& needle) {
        std::vector<uint8_t> bytes = w.bytes();
        try {
            Model::from_file(gguf::File::parse(bytes.data(), bytes.size()));
            ADD_FAILURE() << "expected an error mentioning " << needle;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), code) << e.what();
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    ModelSpec s = spec_of("llama", Type::F32, Type::F32, Type::F32);
    s.n_layer = 1;
    {  // unknown architecture
        ModelSpec g = s;
        g.arch = "gpt-neox";
        expect_error(test::make_model(g), Error::Code::Unsupported, "gpt-neox");
    }
    {  // metadata says 3 layers, the file has 1
        test::GGUFWriter w = test::make_model(s);
        w.add_u32("llama.block_count", 3);  // a later duplicate key is a corrupt file too
        std::vector<uint8_t> bytes = w.bytes();
        EXPECT_THROW(Model::from_file(gguf::File::parse(bytes.data(), bytes.size())), Error);
    }
    {  // head count that does not divide
        ModelSpec g = s;
        g.n_head_kv = 3;
        expect_error(test::make_model(g), Error::Code::Corrupt, "head_count");
    }
    {  // feed-forward size in the metadata disagrees with the matrices
        ModelSpec g = s;
        g.metadata_n_ff = 768;
        expect_error(test::make_model(g), Error::Code::Corrupt, "ffn_gate.weight");
    }
    {  // qwen2 needs q/k/v biases: a llama-shaped file labelled qwen2 lacks them
        test::GGUFWriter w;
        ModelSpec g = s;
        w = test::make_model(g);
        std::vector<uint8_t> bytes = w.bytes();
        std::string text(bytes.begin(), bytes.end());
        // Relabel the architecture and its keys in place: "llama" and "qwen2" have the
        // same length, so every offset stays valid.
        for (size_t p = text.find("llama"); p != std::string::npos; p = text.find("llama", p + 5))
            text.replace(p, 5, "qwen2");
        try {
            Model::from_file(gguf::File::parse(text.data(), text.size()));
            ADD_FAILURE() << "expected a missing-bias error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("attn_q.bias"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace ragd

namespace ragd {
namespace {

// 32K positions on a tiny one-layer model: the cache holds them all, the logits at the
// last position match a reference that computes that position alone (one layer, so its
// keys and values come straight from the embeddings), and one more token is refused.
TEST(Model, LongContext32K) {
    ModelSpec s = spec_of("llama", Type::F32, Type::F32, Type::F32);
    s.n_embd = 32;  // one head: the cost is n^2 / 2 attention scores per head
    s.n_head = 1;
    s.n_head_kv = 1;
    s.n_ff = 64;
    s.n_layer = 1;
    s.n_ctx = 32768;
    s.rope_theta = 1e6f;
    std::vector<uint8_t> bytes = test::make_model(s).bytes();
    gguf::File file = gguf::File::parse(bytes.data(), bytes.size());
    std::unique_ptr<Model> model = Model::from_file(file);
    const int V = model->params().n_vocab, n = 32768;
    std::vector<int32_t> tokens = random_tokens(n, V, 9);
    Sequence seq(*model, n, 2);
    EXPECT_EQ(seq.n_ctx(), n);
    for (int done = 0; done < n; done += 4096) seq.eval(tokens.data() + done, 4096);
    EXPECT_EQ(seq.n_past(), n);

    test::ReferenceModel ref(file);
    const auto& L = ref.layers[0];
    const int hd = ref.head_dim, kv_dim = ref.n_head_kv * hd, q_dim = ref.n_head * hd;
    auto embed = [&](int32_t id) {
        return std::vector<double>(ref.embd.begin() + long(id) * ref.n_embd,
                                   ref.embd.begin() + long(id + 1) * ref.n_embd);
    };
    std::vector<std::vector<double>> k(static_cast<size_t>(n)), v(static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) {
        std::vector<double> h = ref.norm(embed(tokens[size_t(t)]), L.attn_norm);
        k[size_t(t)] = ref.matvec(L.wk, h, kv_dim);
        v[size_t(t)] = ref.matvec(L.wv, h, kv_dim);
        for (int hh = 0; hh < ref.n_head_kv; ++hh) ref.rope(&k[size_t(t)][size_t(hh * hd)], t);
    }
    std::vector<double> x = embed(tokens.back());
    std::vector<double> q = ref.matvec(L.wq, ref.norm(x, L.attn_norm), q_dim);
    std::vector<double> att(size_t(q_dim), 0.0);
    for (int hh = 0; hh < ref.n_head; ++hh) {
        ref.rope(&q[size_t(hh * hd)], n - 1);
        const int kvh = hh / (ref.n_head / ref.n_head_kv);
        std::vector<double> w(static_cast<size_t>(n));
        double mx = -1e300, sum = 0;
        for (int j = 0; j < n; ++j) {
            double d = 0;
            for (int i = 0; i < hd; ++i)
                d += q[size_t(hh * hd + i)] * k[size_t(j)][size_t(kvh * hd + i)];
            mx = std::max(mx, w[size_t(j)] = d / std::sqrt(double(hd)));
        }
        for (double& e : w) sum += e = std::exp(e - mx);
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < hd; ++i)
                att[size_t(hh * hd + i)] += w[size_t(j)] / sum * v[size_t(j)][size_t(kvh * hd + i)];
    }
    std::vector<double> o = ref.matvec(L.wo, att, ref.n_embd);
    for (int i = 0; i < ref.n_embd; ++i) x[size_t(i)] += o[size_t(i)];
    std::vector<double> h = ref.norm(x, L.ffn_norm);
    std::vector<double> g = ref.matvec(L.gate, h, ref.n_ff), u = ref.matvec(L.up, h, ref.n_ff);
    for (int i = 0; i < ref.n_ff; ++i)
        g[size_t(i)] = g[size_t(i)] / (1 + std::exp(-g[size_t(i)])) * u[size_t(i)];
    std::vector<double> d = ref.matvec(L.down, g, ref.n_embd);
    for (int i = 0; i < ref.n_embd; ++i) x[size_t(i)] += d[size_t(i)];
    std::vector<double> logits = ref.matvec(ref.out, ref.norm(x, ref.out_norm), V);
    std::vector<float> expect(logits.begin(), logits.end());
    EXPECT_GE(test::cosine(seq.logits().data(), expect.data(), size_t(V)), 0.9999);

    int32_t one = tokens[0];
    EXPECT_THROW(seq.eval(&one, 1), Error);
    EXPECT_EQ(seq.n_past(), n);
}

}  // namespace
}  // namespace ragd
