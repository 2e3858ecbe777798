// The encoder (generate/bert) against the plain reference in bert_reference.h, for bert
// and nomic-bert and every weight type, batched against one at a time, pooling, the
// reranker head, bad input; and against llama.cpp's outputs for tiny-bert-F32.
#include "generate/bert.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "tests/generate/bert_reference.h"
#include "tests/generate/model_writer.h"
#include "tests/generate/reference_forward.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using gguf::Type;
using test::BertSpec;

std::unique_ptr<BertModel> build(const BertSpec& spec) {
    std::vector<uint8_t> bytes = test::make_bert_model(spec).bytes();
    return BertModel::from_file(gguf::File::parse(bytes.data(), bytes.size()));
}

gguf::File file_of(const BertSpec& spec) {
    std::vector<uint8_t> bytes = test::make_bert_model(spec).bytes();
    return gguf::File::parse(bytes.data(), bytes.size());
}

// Weights scaled so that attention is far from uniform and every layer matters.
BertSpec spec(const std::string& arch, Type matrices, Type embd) {
    BertSpec s;
    s.arch = arch;
    s.matrix_type = matrices;
    s.embd_type = embd;
    s.weight_std = 0.125f;  // 1 / sqrt(n_embd)
    return s;
}

const std::vector<std::string> kTexts = {
    "The license grants you the right to copy, modify and distribute the software.",
    "Hello world",
    "",
    "This program is distributed in the hope that it will be useful, but WITHOUT ANY "
    "WARRANTY; see page 12 of the contract (section 4.2) for details.",
    "query: where is the data?",
};

double cos_of(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    return test::cosine(a.data(), b.data(), std::min(a.size(), b.size()));
}

std::vector<float> as_floats(const std::vector<double>& v) {
    return {v.begin(), v.end()};
}

struct Case {
    const char* name;
    BertSpec spec;
    double min_cosine;  // per token, against the reference with exact activations
};

std::vector<Case> cases() {
    std::vector<Case> c;
    for (const char* arch : {"bert", "nomic-bert"}) {
        c.push_back({"F32", spec(arch, Type::F32, Type::F32), 0.9999});
        c.push_back({"F16", spec(arch, Type::F16, Type::F16), 0.9999});
        c.push_back({"BF16", spec(arch, Type::BF16, Type::F32), 0.9999});
        c.push_back({"Q8_0", spec(arch, Type::Q8_0, Type::F16), 0.999});
        c.push_back({"Q4_0", spec(arch, Type::Q4_0, Type::Q8_0), 0.995});
    }
    // K-quants need rows of 256: a wider model.
    BertSpec k = spec("bert", Type::Q4_K, Type::Q6_K);
    k.n_embd = 256;
    k.n_ff = 512;
    k.n_layer = 1;
    k.weight_std = 0.0625f;
    k.overrides = {{"blk.0.ffn_down.weight", Type::Q6_K}, {"blk.0.attn_v.weight", Type::Q5_K}};
    c.push_back({"Q4_K-mix", k, 0.995});
    return c;
}

TEST(Bert, StatesMatchReferenceForEveryArchAndType) {
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.spec.arch + " " + c.name);
        gguf::File file = file_of(c.spec);
        std::unique_ptr<BertModel> model = BertModel::from_file(file);
        test::BertReference ref(file);
        Encoder enc(*model, 2);
        std::vector<std::vector<int32_t>> batch;
        for (const std::string& t : kTexts) batch.push_back(enc.tokenize(t));
        std::vector<std::vector<float>> got = enc.forward(batch);
        ASSERT_EQ(got.size(), batch.size());
        const size_t D = size_t(model->dim());
        double worst = 1, worst_rounded = 1;
        for (size_t s = 0; s < batch.size(); ++s) {
            ASSERT_EQ(got[s].size(), batch[s].size() * D);
            ref.quantize_activations = false;
            std::vector<std::vector<double>> want = ref.states(batch[s]);
            // Float weights take float activations: rounding changes nothing there.
            const bool quantized = c.spec.matrix_type != Type::F32 &&
                                   c.spec.matrix_type != Type::F16 &&
                                   c.spec.matrix_type != Type::BF16;
            ref.quantize_activations = true;
            std::vector<std::vector<double>> want_r = quantized ? ref.states(batch[s]) : want;
            for (size_t t = 0; t < batch[s].size(); ++t) {
                std::vector<float> g(got[s].begin() + long(t * D),
                                     got[s].begin() + long((t + 1) * D));
                worst = std::min(worst, cos_of(g, as_floats(want[t])));
                worst_rounded = std::min(worst_rounded, cos_of(g, as_floats(want_r[t])));
            }
        }
        EXPECT_GE(worst, c.min_cosine);
        EXPECT_GE(worst_rounded, 0.9999) << "with the engine's activation rounding";
        std::printf("[ bert ] %-10s %-9s per-token 1 - cosine <= %.2e (rounded activations %.2e)\n",
                    c.spec.arch.c_str(), c.name, 1 - worst, 1 - worst_rounded);
    }
}

TEST(Bert, PoolingAndNormalisationMatchReference) {
    for (const char* arch : {"bert", "nomic-bert"}) {
        SCOPED_TRACE(arch);
        BertSpec s = spec(arch, Type::F16, Type::F16);
        gguf::File file = file_of(s);
        std::unique_ptr<BertModel> model = BertModel::from_file(file);
        test::BertReference ref(file);
        Encoder enc(*model, 2);
        const size_t D = size_t(model->dim());
        for (Pooling p : {Pooling::Mean, Pooling::Cls, Pooling::Last}) {
            for (bool norm : {true, false}) {
                std::vector<float> got = enc.embed(kTexts, p, norm);
                ASSERT_EQ(got.size(), kTexts.size() * D);
                for (size_t i = 0; i < kTexts.size(); ++i) {
                    std::vector<float> want = ref.embed(enc.tokenize(kTexts[i]), int(p), norm);
                    std::vector<float> g(got.begin() + long(i * D),
                                         got.begin() + long((i + 1) * D));
                    EXPECT_GE(cos_of(g, want), 0.9999) << pooling_name(p) << " text " << i;
                    double ng = 0, nw = 0;
                    for (size_t d = 0; d < D; ++d)
                        ng += double(g[d]) * g[d], nw += double(want[d]) * want[d];
                    EXPECT_NEAR(std::sqrt(ng), std::sqrt(nw), 1e-3 * std::sqrt(nw));
                    if (norm) {
                        EXPECT_NEAR(std::sqrt(ng), 1.0, 1e-5);
                    }
                }
            }
        }
        // Pooling::None: the model's own (cls in the spec).
        EXPECT_EQ(enc.embed({"hello"}), enc.embed({"hello"}, Pooling::Cls));
        EXPECT_THROW(enc.embed({"hello"}, Pooling::Rank), Error);
    }
}

TEST(Bert, BatchedEqualsOneAtATimeAndAnyThreadCount) {
    std::unique_ptr<BertModel> model = build(spec("bert", Type::Q8_0, Type::F16));
    Encoder big(*model, 3);
    std::vector<float> all = big.embed(kTexts, Pooling::Mean);
    Encoder small(*model, 1);
    small.batch_tokens = 1;  // every text alone
    std::vector<float> one = small.embed(kTexts, Pooling::Mean);
    ASSERT_EQ(all.size(), one.size());
    for (size_t i = 0; i < all.size(); ++i) EXPECT_NEAR(all[i], one[i], 1e-5) << i;
    small.batch_tokens = 40;  // groups of a few texts
    std::vector<float> some = small.embed(kTexts, Pooling::Mean);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_NEAR(all[i], some[i], 1e-5) << i;
    EXPECT_TRUE(big.embed({}).empty());
}

TEST(Bert, TokenizeAddsClsSepAndTruncates) {
    BertSpec s = spec("bert", Type::F32, Type::F32);
    s.n_ctx = 16;
    std::unique_ptr<BertModel> model = build(s);
    Encoder enc(*model, 1);
    EXPECT_EQ(enc.tokenize(""), (std::vector<int32_t>{2, 3}));
    std::vector<int32_t> hello = enc.tokenize("Hello world");
    ASSERT_EQ(hello.size(), 4u);
    EXPECT_EQ(hello.front(), 2);
    EXPECT_EQ(hello.back(), 3);
    EXPECT_EQ(model->tokenizer().decode(hello), "hello world");
    std::string long_text;
    for (int i = 0; i < 40; ++i) long_text += "word ";
    std::vector<int32_t> ids = enc.tokenize(long_text);
    ASSERT_EQ(ids.size(), 16u);
    EXPECT_EQ(ids.front(), 2);
    EXPECT_EQ(ids.back(), 3);
    // Long texts embed (truncated) rather than fail.
    EXPECT_EQ(enc.embed({long_text, "short"}).size(), 2u * size_t(model->dim()));

    std::vector<int32_t> pair = enc.tokenize_pair("hello", long_text);
    ASSERT_EQ(pair.size(), 16u);
    EXPECT_EQ(pair[0], 2);
    EXPECT_EQ(pair[2], 3);  // [CLS] hello [SEP] ...
    EXPECT_EQ(pair.back(), 3);
    std::vector<int32_t> both = enc.tokenize_pair(long_text, long_text);
    ASSERT_EQ(both.size(), 16u);
    EXPECT_EQ(std::count(both.begin(), both.end(), 3), 2);
}

TEST(Bert, RerankMatchesReferenceHead) {
    for (bool with_output : {true, false}) {
        SCOPED_TRACE(with_output ? "cls + cls.output" : "cls only");
        BertSpec s = spec("bert", Type::F16, Type::F16);
        s.cls_head = true;
        s.cls_output = with_output;
        s.pooling = 4;
        gguf::File file = file_of(s);
        std::unique_ptr<BertModel> model = BertModel::from_file(file);
        EXPECT_TRUE(model->is_reranker());
        EXPECT_EQ(model->params().n_cls_out, 1);
        EXPECT_EQ(model->params().pooling, Pooling::Rank);
        test::BertReference ref(file);
        Encoder enc(*model, 2);
        const std::string query = "what does the license grant?";
        std::vector<std::string> docs(kTexts.begin(), kTexts.end());
        std::vector<float> got = enc.rerank(query, docs);
        ASSERT_EQ(got.size(), docs.size());
        for (size_t i = 0; i < docs.size(); ++i) {
            std::vector<int32_t> ids = enc.tokenize_pair(query, docs[i]);
            size_t second = size_t(std::find(ids.begin(), ids.end(), 3) - ids.begin()) + 1;
            double want = ref.score(ids, second);
            EXPECT_NEAR(got[i], want, 2e-3 * std::max(1.0, std::fabs(want))) << "doc " << i;
        }
        // Embedding with a reranker: the [CLS] state.
        EXPECT_EQ(enc.embed({"hello"}).size(), size_t(model->dim()));
    }
    std::unique_ptr<BertModel> plain = build(spec("bert", Type::F32, Type::F32));
    Encoder enc(*plain, 1);
    EXPECT_FALSE(plain->is_reranker());
    try {
        enc.rerank("q", {"d"});
        FAIL() << "rerank without a head";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
    }
}

TEST(Bert, BadTokenInputThrows) {
    std::unique_ptr<BertModel> model = build(spec("bert", Type::F32, Type::F32));
    Encoder enc(*model, 1);
    auto expect_invalid = [&](const std::vector<std::vector<int32_t>>& batch, const char* what) {
        try {
            enc.forward(batch);
            ADD_FAILURE() << what;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::Code::InvalidArgument) << what;
        }
    };
    expect_invalid({{2, 3}, {}}, "empty sequence");
    expect_invalid({{2, 1024, 3}}, "id past the vocabulary");
    expect_invalid({{2, -1, 3}}, "negative id");
    expect_invalid({std::vector<int32_t>(513, 5)}, "longer than the context");
    EXPECT_EQ(enc.forward({std::vector<int32_t>(512, 5)})[0].size(), 512u * 64u);
    EXPECT_EQ(parse_pooling("mean"), Pooling::Mean);
    EXPECT_EQ(parse_pooling("cls"), Pooling::Cls);
    EXPECT_STREQ(pooling_name(Pooling::Last), "last");
    EXPECT_THROW(parse_pooling("max"), Error);
}

void expect_load_error(const BertSpec& s, Error::Code code, const std::string& needle) {
    try {
        build(s);
        ADD_FAILURE() << "loaded; expected an error naming " << needle;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(Bert, LoadChecksEveryTensor) {
    const std::vector<std::string> names = {
        "token_embd.weight",           "position_embd.weight",          "token_embd_norm.weight",
        "token_embd_norm.bias",        "blk.0.attn_q.weight",           "blk.0.attn_k.bias",
        "blk.1.attn_v.weight",         "blk.1.attn_output.weight",      "blk.1.attn_output.bias",
        "blk.0.attn_output_norm.bias", "blk.1.ffn_up.weight",           "blk.1.ffn_up.bias",
        "blk.0.ffn_down.weight",       "blk.0.layer_output_norm.weight"};
    for (const std::string& n : names) {
        SCOPED_TRACE(n);
        BertSpec s = spec("bert", Type::F32, Type::F32);
        s.omit = {n};
        expect_load_error(s, Error::Code::Corrupt, "'" + n + "'");
        if (n == "token_embd.weight") continue;  // its rows are the vocabulary
        s.omit.clear();
        s.misshape = {n};
        expect_load_error(s, Error::Code::Corrupt, "'" + n + "'");
    }
    BertSpec nomic = spec("nomic-bert", Type::F32, Type::F32);
    nomic.omit = {"blk.1.attn_qkv.weight"};
    expect_load_error(nomic, Error::Code::Corrupt, "'blk.1.attn_qkv.weight'");
    nomic.omit = {"blk.0.ffn_gate.weight"};
    expect_load_error(nomic, Error::Code::Corrupt, "'blk.0.ffn_gate.weight'");

    BertSpec q41 = spec("bert", Type::F32, Type::F32);
    q41.raw_types = {{"blk.0.attn_q.weight", Type::Q4_1}};
    expect_load_error(q41, Error::Code::Unsupported, "'blk.0.attn_q.weight'");
    BertSpec bad_norm = spec("bert", Type::F32, Type::F32);
    bad_norm.raw_types = {{"blk.0.attn_output_norm.weight", Type::Q4_1}};
    bad_norm.n_embd = 256;
    bad_norm.weight_std = 0.0625f;
    expect_load_error(bad_norm, Error::Code::Unsupported, "'blk.0.attn_output_norm.weight'");

    BertSpec head = spec("bert", Type::F32, Type::F32);
    head.cls_head = true;
    head.misshape = {"cls.output.bias"};
    expect_load_error(head, Error::Code::Corrupt, "'cls.output.bias'");
    head.misshape = {};
    head.omit = {"cls.bias"};
    expect_load_error(head, Error::Code::Corrupt, "'cls.bias'");
    BertSpec rank = spec("bert", Type::F32, Type::F32);
    rank.pooling = 4;
    expect_load_error(rank, Error::Code::Corrupt, "classification head");
    BertSpec pool = spec("bert", Type::F32, Type::F32);
    pool.pooling = 9;
    expect_load_error(pool, Error::Code::Unsupported, "pooling_type");

    // A decoder file is not an encoder, and the decoder loader refuses encoders.
    test::ModelSpec llama;
    std::vector<uint8_t> bytes = test::make_model(llama).bytes();
    try {
        BertModel::from_file(gguf::File::parse(bytes.data(), bytes.size()));
        ADD_FAILURE() << "loaded a llama file as an encoder";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::Unsupported);
    }
}

// ---------------------------------------------------------------------------------------
// llama.cpp's outputs for tiny-bert-F32 (../shared/reference)
// ---------------------------------------------------------------------------------------

std::vector<float> read_npy(const std::string& path, size_t& rows, size_t& cols) {
    std::string bytes = test::read_file(path);
    EXPECT_EQ(bytes.compare(0, 6, "\x93NUMPY"), 0) << path;
    size_t header_len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
    std::string header = bytes.substr(10, header_len);
    EXPECT_NE(header.find("'<f4'"), std::string::npos) << header;
    size_t open = header.find("'shape': (");
    std::istringstream shape(header.substr(open + 10));
    char comma;
    shape >> rows >> comma >> cols;
    std::vector<float> v(rows * cols);
    EXPECT_EQ(bytes.size(), 10 + header_len + v.size() * 4) << path;
    if (bytes.size() == 10 + header_len + v.size() * 4)
        std::memcpy(v.data(), bytes.data() + 10 + header_len, v.size() * 4);
    return v;
}

std::vector<std::vector<float>> read_rows(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::vector<float>> rows;
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::vector<float> r;
        for (float v; ls >> v;) r.push_back(v);
        if (!r.empty()) rows.push_back(std::move(r));
    }
    return rows;
}

TEST(BertReference, MatchesLlamaCpp) {
    const std::string dir = test::reference_dir();
    if (dir.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    const std::string ref = dir + "/ref/tiny-bert-F32/";
    gguf::File file = gguf::File::open(dir + "/models/tiny-bert-F32.gguf");
    std::unique_ptr<BertModel> model = BertModel::from_file(file);
    ASSERT_EQ(model->dim(), 256);
    EXPECT_EQ(model->params().pooling, Pooling::Cls);
    test::BertReference plain(file);
    Encoder enc(*model, 2);

    std::vector<std::string> sentences;
    {
        std::ifstream in(ref + "info.txt");
        for (std::string line; std::getline(in, line);)
            if (line.rfind("sentence ", 0) == 0)
                sentences.push_back(line.substr(line.find(": ") + 2));
    }
    ASSERT_EQ(sentences.size(), 3u);
    std::vector<std::vector<float>> mean = read_rows(ref + "embd_mean.txt");
    std::vector<std::vector<float>> cls = read_rows(ref + "embd_cls.txt");
    ASSERT_EQ(mean.size(), 3u);
    ASSERT_EQ(cls.size(), 3u);

    std::vector<float> got_mean = enc.embed(sentences, Pooling::Mean, false);
    std::vector<float> got_cls = enc.embed(sentences, Pooling::Cls, false);
    std::vector<float> got_default = enc.embed(sentences);  // cls, normalised
    for (size_t s = 0; s < sentences.size(); ++s) {
        SCOPED_TRACE("sentence " + std::to_string(s));
        std::ifstream tin(ref + "tokens_s" + std::to_string(s) + ".txt");
        std::vector<int32_t> want_ids;
        for (int32_t id; tin >> id;) want_ids.push_back(id);
        std::vector<int32_t> ids = enc.tokenize(sentences[s]);
        EXPECT_EQ(ids, want_ids);

        size_t rows, cols;
        std::vector<float> states =
            read_npy(ref + "token_embd_s" + std::to_string(s) + ".npy", rows, cols);
        ASSERT_EQ(rows, want_ids.size());
        ASSERT_EQ(cols, 256u);
        std::vector<float> got = enc.forward({want_ids})[0];
        std::vector<std::vector<double>> mine = plain.states(want_ids);
        double worst = 1, worst_plain = 1;
        for (size_t t = 0; t < rows; ++t) {
            worst = std::min(worst, test::cosine(&got[t * cols], &states[t * cols], cols));
            std::vector<float> p = as_floats(mine[t]);
            worst_plain = std::min(worst_plain, test::cosine(p.data(), &states[t * cols], cols));
        }
        EXPECT_GE(worst, 0.999) << "per-token states";
        EXPECT_GE(worst_plain, 0.999) << "the test reference's per-token states";

        const double c_mean = test::cosine(&got_mean[s * 256], mean[s].data(), 256);
        const double c_cls = test::cosine(&got_cls[s * 256], cls[s].data(), 256);
        const double c_def = test::cosine(&got_default[s * 256], cls[s].data(), 256);
        EXPECT_GE(c_mean, 0.999);
        EXPECT_GE(c_cls, 0.999);
        EXPECT_GE(c_def, 0.999);
        std::printf(
            "[ llama.cpp ] tiny-bert-F32 sentence %zu (%zu tokens): ids %s; 1 - cosine: states "
            "<= %.2e (test reference %.2e), mean %.2e, cls %.2e\n",
            s, ids.size(), ids == want_ids ? "equal" : "DIFFER", 1 - worst, 1 - worst_plain,
            1 - c_mean, 1 - c_cls);
    }
}

}  // namespace
}  // namespace ragd
