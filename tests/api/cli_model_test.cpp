// `ragd run`, `ragd tokenize` and `ragd ask -m` through the real binary: the contract of
// DESIGN.md (greedy --temp 0, --logits-out, -n 0, JSON ids), against llama.cpp's outputs
// where the reference folder is present and against the in-process engine otherwise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/model.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using test::run_ragd;
using test::RunResult;
using test::TempDir;

const char* kPrompt = "The license grants you the right to";

std::vector<float> read_floats(const std::string& path) {
    std::string bytes = test::read_file(path);
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

// A small random-weight model file in dir.
std::string write_model(const TempDir& dir, gguf::Type type = gguf::Type::Q8_0, int n_ctx = 256) {
    test::ModelSpec s;
    s.matrix_type = s.embd_type = s.output_type = type;
    s.n_ctx = n_ctx;
    std::string path = dir / "model.gguf";
    test::make_model(s).write(path);
    return path;
}

TEST(CliModel, RunGreedyMatchesLlamaCpp) {
    const std::string ref = test::reference_dir();
    if (ref.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    TempDir dir;
    RunResult r = run_ragd({"run", "-m", ref + "/models/tiny-llama-F32.gguf", "-p", kPrompt, "-n",
                            "32", "--temp", "0", "-t", "2", "--logits-out", dir / "logits.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // gen_text.txt is llama.cpp's 32 greedy tokens as text, without a final newline.
    EXPECT_EQ(r.out, test::read_file(ref + "/ref/tiny-llama-F32/gen_text.txt") + "\n");
    std::vector<float> expect;
    std::ifstream in(ref + "/ref/tiny-llama-F32/logits_first.txt");
    for (float f; in >> f;) expect.push_back(f);
    std::vector<float> got = read_floats(dir / "logits.bin");
    ASSERT_EQ(got.size(), 1024u);
    ASSERT_EQ(expect.size(), 1024u);
    EXPECT_GE(cosine(got, expect), 0.999);
    EXPECT_NE(r.err.find("prompt: 9 tokens"), std::string::npos) << r.err;
}

TEST(CliModel, TokenizeMatchesLlamaCpp) {
    const std::string ref = test::reference_dir();
    if (ref.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    RunResult r = run_ragd({"tokenize", "-m", ref + "/models/tiny-llama-Q4_K_M.gguf", kPrompt});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<int> ids = json::parse(r.out).get<std::vector<int>>();
    std::ifstream in(ref + "/ref/tiny-llama-Q4_K_M/prompt_tokens.txt");
    std::vector<int> expect;
    for (int id; in >> id;) expect.push_back(id);
    EXPECT_EQ(ids, expect);
}

// -n 0 evaluates the prompt only; its logits are the in-process engine's, bit for bit
// (same code, same thread count), and nothing is printed on stdout.
TEST(CliModel, PromptOnlyLogitsEqualTheEngine) {
    TempDir dir;
    std::string model_path = write_model(dir);
    RunResult r = run_ragd({"run", "-m", model_path, "-p", "hello world", "-n", "0", "-t", "1",
                            "--logits-out", dir / "l.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    std::unique_ptr<Model> model = Model::load(model_path);
    Sequence seq(*model, 0, 1);
    seq.eval(model->tokenizer().encode("hello world", true, true));
    EXPECT_EQ(read_floats(dir / "l.bin"), seq.logits());
    // Read into memory instead of mapped: the same numbers.
    r = run_ragd({"run", "-m", model_path, "-p", "hello world", "-n", "0", "-t", "1", "--no-mmap",
                  "--logits-out", dir / "l2.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_floats(dir / "l2.bin"), seq.logits());
    // Mapped on request; asking for both ways is refused before anything runs.
    r = run_ragd({"run", "-m", model_path, "-p", "hello world", "-n", "0", "-t", "1", "--mmap",
                  "--logits-out", dir / "l4.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_floats(dir / "l4.bin"), seq.logits());
    r = run_ragd({"run", "-m", model_path, "-p", "hello world", "-n", "0", "--mmap", "--no-mmap",
                  "--logits-out", dir / "l5.bin"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--mmap and --no-mmap exclude each other"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "l5.bin"));
    // The 8-bit KV cache: the engine's numbers with that cache.
    r = run_ragd({"run", "-m", model_path, "-p", "hello world", "-n", "0", "-t", "1", "--kv-type",
                  "q8", "--logits-out", dir / "l3.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Sequence q8(*model, 0, 1, KvType::Q8);
    q8.eval(model->tokenizer().encode("hello world", true, true));
    EXPECT_EQ(read_floats(dir / "l3.bin"), q8.logits());
}

// Sampling with a seed is reproducible, and different seeds explore.
TEST(CliModel, SeededSamplingIsReproducible) {
    TempDir dir;
    std::string model_path = write_model(dir);
    auto run = [&](const char* seed) {
        RunResult r = run_ragd({"run", "-m", model_path, "-p", "abc", "-n", "24", "--temp", "1.5",
                                "--top-k", "0", "--top-p", "1", "--min-p", "0", "--seed", seed});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    };
    std::string a = run("1"), b = run("1"), c = run("2");
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

TEST(CliModel, BadInputGivesOneLineErrors) {
    TempDir dir;
    std::string model_path = write_model(dir);
    struct Bad {
        std::vector<std::string> args;
        int code;
        const char* needle;
    };
    std::string truncated = dir / "truncated.gguf";
    {
        std::string bytes = test::read_file(model_path);
        test::write_file(truncated, bytes.substr(0, bytes.size() / 2));
    }
    std::string long_prompt(4000, 'x');
    const Bad cases[] = {
        {{"run", "-p", "hi"}, 2, "-m"},
        {{"run", "-m", model_path}, 2, "-p"},
        {{"run", "-m", dir / "missing.gguf", "-p", "hi"}, 2, "missing.gguf"},
        {{"run", "-m", truncated, "-p", "hi"}, 1, "truncated.gguf"},
        {{"run", "-m", model_path, "-p", long_prompt, "-c", "64"}, 2, "context"},
        {{"run", "-m", model_path, "-p", "hi", "-c", "100000"}, 2, "context"},
        {{"run", "-m", model_path, "-p", "hi", "--temp", "-1"}, 2, "--temp"},
        {{"run", "-m", model_path, "-p", "hi", "-n", "x"}, 2, "-n"},
        {{"run", "-m", model_path, "-p", "hi", "--kv-type", "q4"}, 2, "KV cache type"},
        {{"bench", "-m", model_path, "--kv-type", "f16"}, 2, "KV cache type"},
        {{"tokenize", "-m", model_path}, 2, "TEXT"},
        {{"tokenize", "-m", truncated, "x"}, 1, "truncated.gguf"},
    };
    for (const Bad& b : cases) {
        RunResult r = run_ragd(b.args);
        EXPECT_EQ(r.exit_code, b.code) << b.args[0] << " " << b.needle << ": " << r.err;
        EXPECT_NE(r.err.find(b.needle), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
}

// `ask -m` answers with the model from retrieved passages: JSON has the answer, mode
// "model", and citations only for passage numbers the answer contains. (A random-weight
// model writes noise; which [n] it writes is checked by the unit tests of citations.)
TEST(CliModel, AskWithModelOnTheCorpus) {
    TempDir dir;
    // The test vocabulary has one token per byte: a passage is about 1,000 tokens.
    std::string model_path = write_model(dir, gguf::Type::Q4_K, 4096);
    std::string data = dir / "data";
    RunResult r = run_ragd({"ingest", "--data", data, test::source_dir() + "/corpus"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_ragd({"ask", "--data", data, "-m", model_path, "-n", "16", "-c", "2048", "-k", "3",
                  "--json", "termination"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["mode"], "model");
    EXPECT_TRUE(j["answer"].is_string());
    ASSERT_TRUE(j["citations"].is_array());
    std::string answer = j["answer"];
    for (const json& c : j["citations"]) {
        std::string marker = "[";  // (two steps: GCC 12 warns on "[" + string)
        marker += std::to_string(c["number"].get<int>());
        EXPECT_NE(answer.find(marker), std::string::npos);
    }
}

}  // namespace
}  // namespace ragd
