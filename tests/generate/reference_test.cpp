// The engine against llama.cpp: the tiny models in ../shared/reference were made and run
// by llama.cpp (see its README); their logits and greedy tokens are the expected values.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "generate/model.h"
#include "generate/sampler.h"
#include "tests/generate/reference_forward.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

std::vector<int32_t> read_ids(const std::string& path) {
    std::ifstream in(path);
    std::vector<int32_t> ids;
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

// A little-endian float32 .npy file: returns the values and sets rows/cols from its
// shape. Fails the test on anything else.
std::vector<float> read_npy(const std::string& path, size_t& rows, size_t& cols) {
    std::string bytes = test::read_file(path);
    EXPECT_EQ(bytes.compare(0, 6, "\x93NUMPY"), 0) << path;
    size_t header_len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
    std::string header = bytes.substr(10, header_len);
    EXPECT_NE(header.find("'<f4'"), std::string::npos) << header;
    EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
    size_t open = header.find("'shape': (");
    std::istringstream shape(header.substr(open + 10));
    char comma;
    shape >> rows >> comma >> cols;
    std::vector<float> v(rows * cols);
    EXPECT_EQ(bytes.size(), 10 + header_len + v.size() * 4) << path;
    std::memcpy(v.data(), bytes.data() + 10 + header_len, v.size() * 4);
    return v;
}

struct RefCase {
    const char* name;
    double min_cosine;       // logits against llama.cpp's at every position
    bool same_continuation;  // greedy tokens must equal llama.cpp's
    KvType kv = KvType::F32;
};

// llama.cpp keeps its KV cache in F16, so F32 agrees closely but not bit for bit;
// quantized models also differ in how each engine rounds activations (README).
const RefCase kCases[] = {
    {"tiny-llama-F32", 0.999, true},
    {"tiny-llama-Q8_0", 0.99, false},
    {"tiny-llama-Q4_K_M", 0.99, false},
    // The 8-bit KV cache on the float model: the cache's rounding is the only difference.
    {"tiny-llama-F32", 0.999, false, KvType::Q8},
};

TEST(Reference, LogitsAndGreedyTokensMatchLlamaCpp) {
    const std::string dir = test::reference_dir();
    if (dir.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    for (const RefCase& c : kCases) {
        SCOPED_TRACE(c.name);
        const std::string ref = dir + "/ref/" + c.name + "/";
        std::unique_ptr<Model> model = Model::load(dir + "/models/" + c.name + ".gguf");
        const int V = model->params().n_vocab;
        ASSERT_EQ(V, 1024);
        std::vector<int32_t> prompt = read_ids(ref + "prompt_tokens.txt");
        std::vector<int32_t> expect_gen = read_ids(ref + "gen_tokens.txt");
        ASSERT_EQ(prompt.size(), 9u);
        ASSERT_EQ(expect_gen.size(), 32u);
        size_t rows, cols;
        std::vector<float> prompt_logits = read_npy(ref + "prompt_logits.npy", rows, cols);
        ASSERT_EQ(rows, prompt.size());
        ASSERT_EQ(cols, size_t(V));
        std::vector<float> gen_logits = read_npy(ref + "gen_logits.npy", rows, cols);
        ASSERT_EQ(rows, expect_gen.size());

        Sequence seq(*model, 512, 2, c.kv);
        std::vector<float> got;
        seq.eval(prompt, &got);
        double worst = 1;
        for (size_t t = 0; t < prompt.size(); ++t)
            worst = std::min(worst, test::cosine(&got[t * V], &prompt_logits[t * V], size_t(V)));
        EXPECT_GE(worst, c.min_cosine) << "prompt positions";

        // Greedy decoding, fed llama.cpp's own tokens so that every step compares logits
        // in the same context; the engine's own choice is recorded at each step.
        std::vector<int32_t> ours;
        double worst_gen = 1;
        for (size_t i = 0; i < expect_gen.size(); ++i) {
            worst_gen = std::min(worst_gen,
                                 test::cosine(seq.logits().data(), &gen_logits[i * V], size_t(V)));
            ours.push_back(argmax(seq.logits().data(), V));
            if (i + 1 < expect_gen.size()) seq.eval(&expect_gen[i], 1);
        }
        EXPECT_GE(worst_gen, c.min_cosine) << "generation steps";
        size_t same = 0;
        for (size_t i = 0; i < ours.size(); ++i) same += ours[i] == expect_gen[i];
        if (c.same_continuation) {
            EXPECT_EQ(ours, expect_gen);
        }
        std::printf(
            "[ reference ] %s (KV %s): prompt cosine >= %.6f, generation cosine >= %.6f, "
            "greedy tokens equal %zu/32\n",
            c.name, kv_type_name(c.kv), worst, worst_gen, same);
    }
}

// The reference forward pass of the tests agrees with llama.cpp too, so the two checks
// of the engine (reference_forward.h and llama.cpp) confirm each other.
TEST(Reference, TestReferenceForwardMatchesLlamaCpp) {
    const std::string dir = test::reference_dir();
    if (dir.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    gguf::File file = gguf::File::open(dir + "/models/tiny-llama-F32.gguf");
    test::ReferenceModel ref(file);
    std::vector<int32_t> prompt = read_ids(dir + "/ref/tiny-llama-F32/prompt_tokens.txt");
    size_t rows, cols;
    std::vector<float> expect = read_npy(dir + "/ref/tiny-llama-F32/prompt_logits.npy", rows, cols);
    std::vector<float> got = ref.logits(prompt);
    ASSERT_EQ(got.size(), expect.size());
    for (size_t t = 0; t < rows; ++t)
        EXPECT_GE(test::cosine(&got[t * cols], &expect[t * cols], cols), 0.999) << "position " << t;
}

}  // namespace
}  // namespace ragd
