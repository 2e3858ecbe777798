// `ragd embed` through the real binary: JSON vectors, pooling and normalisation flags,
// agreement with the in-process encoder and with llama.cpp's tiny-bert outputs, and
// one-line errors with a non-zero exit on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "generate/bert.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using test::run_ragd;
using test::RunResult;
using test::TempDir;

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

double norm(const std::vector<float>& a) {
    double s = 0;
    for (float v : a) s += double(v) * v;
    return std::sqrt(s);
}

std::vector<std::vector<float>> vectors(const RunResult& r) {
    return json::parse(r.out).get<std::vector<std::vector<float>>>();
}

void expect_one_line_error(const RunResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(CliEmbed, VectorsMatchInProcessEncoder) {
    TempDir dir;
    test::BertSpec s;
    s.matrix_type = gguf::Type::Q8_0;
    s.weight_std = 0.125f;
    const std::string path = dir / "bert.gguf";
    test::write_bert_model(path, s);
    RunResult r = run_ragd({"embed", "-m", path, "-t", "2", "Hello world", "", "the license"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::vector<float>> got = vectors(r);
    ASSERT_EQ(got.size(), 3u);

    std::unique_ptr<BertModel> model = BertModel::load(path);
    Encoder enc(*model, 1);
    std::vector<float> want = enc.embed({"Hello world", "", "the license"});
    for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(got[i].size(), 64u);
        EXPECT_NEAR(norm(got[i]), 1.0, 1e-5);
        for (size_t d = 0; d < 64; ++d) EXPECT_NEAR(got[i][d], want[i * 64 + d], 1e-5);
    }

    RunResult raw = run_ragd({"embed", "-m", path, "--pooling", "mean", "--no-normalize", "x"});
    ASSERT_EQ(raw.exit_code, 0) << raw.err;
    std::vector<float> want_raw = enc.embed({"x"}, Pooling::Mean, false);
    std::vector<std::vector<float>> got_raw = vectors(raw);
    ASSERT_EQ(got_raw.size(), 1u);
    EXPECT_GE(cosine(got_raw[0], want_raw), 0.99999);
    EXPECT_NEAR(norm(got_raw[0]), norm(want_raw), 1e-4 * norm(want_raw));
}

std::vector<std::vector<float>> read_rows(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::vector<float>> rows;
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::vector<float> row;
        for (float v; ls >> v;) row.push_back(v);
        if (!row.empty()) rows.push_back(std::move(row));
    }
    return rows;
}

TEST(CliEmbed, TinyBertMatchesLlamaCpp) {
    const std::string ref = test::reference_dir();
    if (ref.empty()) GTEST_SKIP() << "no ../shared/reference (set RAGD_REFERENCE_DIR)";
    const std::string model = ref + "/models/tiny-bert-F32.gguf";
    const std::vector<std::string> sentences = {
        "The license grants you the right to copy, modify and distribute the software.",
        "This program is distributed in the hope that it will be useful, but WITHOUT ANY "
        "WARRANTY.",
        "Hello world"};
    std::vector<std::vector<float>> mean = read_rows(ref + "/ref/tiny-bert-F32/embd_mean.txt");
    std::vector<std::vector<float>> cls = read_rows(ref + "/ref/tiny-bert-F32/embd_cls.txt");
    ASSERT_EQ(mean.size(), 3u);
    std::vector<std::string> args = {"embed", "-m", model, "--pooling", "mean", "--no-normalize"};
    args.insert(args.end(), sentences.begin(), sentences.end());
    RunResult r = run_ragd(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::vector<float>> got = vectors(r);
    ASSERT_EQ(got.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_GE(cosine(got[i], mean[i]), 0.999) << i;
        EXPECT_NEAR(norm(got[i]), norm(mean[i]), 1e-3 * norm(mean[i])) << i;
    }
    // The model's own pooling (CLS), normalised.
    RunResult d = run_ragd({"embed", "-m", model, sentences[2]});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    std::vector<std::vector<float>> v = vectors(d);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_GE(cosine(v[0], cls[2]), 0.999);
    EXPECT_NEAR(norm(v[0]), 1.0, 1e-5);
}

TEST(CliEmbed, BadInputIsAOneLineErrorWithNonZeroExit) {
    TempDir dir;
    const std::string path = dir / "bert.gguf";
    test::write_bert_model(path, test::BertSpec{});
    expect_one_line_error(run_ragd({"embed", "hello"}), "-m");
    expect_one_line_error(run_ragd({"embed", "-m", path}), "TEXT");
    expect_one_line_error(run_ragd({"embed", "-m", path, "--pooling", "max", "x"}), "pooling");
    expect_one_line_error(run_ragd({"embed", "-m", path, "--pooling", "rank", "x"}), "pooling");
    expect_one_line_error(run_ragd({"embed", "-m", path, "-t", "-3", "x"}), "-t");
    expect_one_line_error(run_ragd({"embed", "-m", dir / "missing.gguf", "x"}), "missing.gguf");
    test::write_file(dir / "junk.gguf", "not a gguf file");
    expect_one_line_error(run_ragd({"embed", "-m", dir / "junk.gguf", "x"}), "error");
    const std::string llama = dir / "llama.gguf";
    test::make_model(test::ModelSpec{}).write(llama);
    expect_one_line_error(run_ragd({"embed", "-m", llama, "x"}), "architecture 'llama'");
    expect_one_line_error(run_ragd({"embed", "-m", path, "--bogus", "x"}), "--bogus");

    RunResult help = run_ragd({"embed", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("ragd embed"), std::string::npos);
}

}  // namespace
}  // namespace ragd
