// `ragd extract`: a random-weight model, a schema file, and a document given as a text
// file, an ingested path or an id; JSON {data, evidence} on stdout; bad schemas and
// unknown documents exit non-zero with a one-line error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using test::run_ragd;
using test::RunResult;

class CliExtract : public ::testing::Test {
  protected:
    void SetUp() override {
        test::ModelSpec s;
        s.n_embd = 64;
        s.n_layer = 1;
        s.n_ff = 128;
        s.n_ctx = 1024;
        model_ = dir_ / "tiny.gguf";
        test::make_model(s).write(model_);
        schema_ = dir_ / "schema.json";
        test::write_file(schema_, R"({"type":"object","properties":{
            "effective_date":{"type":"string","format":"date"},
            "notice_days":{"type":"integer","minimum":1,"maximum":90},
            "law":{"enum":["England and Wales","New York"]}},
            "required":["effective_date","notice_days","law"],"additionalProperties":false})");
        doc_ = dir_ / "contract.txt";
        test::write_file(doc_,
                         "Made on 1 March 2024. Notice: 60 days. Governed by the laws of "
                         "England and Wales.\n");
    }
    static void expect_valid(const RunResult& r) {
        ASSERT_EQ(r.exit_code, 0) << r.err;
        json j = json::parse(r.out);
        const json& d = j["data"];
        ASSERT_TRUE(d.is_object()) << r.out;
        EXPECT_EQ(d.size(), 3u);
        EXPECT_EQ(d["effective_date"].get<std::string>().size(), 10u);
        EXPECT_GE(d["notice_days"].get<int>(), 1);
        EXPECT_LE(d["notice_days"].get<int>(), 90);
        EXPECT_TRUE(d["law"] == "England and Wales" || d["law"] == "New York");
        ASSERT_TRUE(j["evidence"].is_object());
        EXPECT_TRUE(j["evidence"].contains("/law"));
    }
    test::TempDir dir_;
    std::string model_, schema_, doc_;
};

TEST_F(CliExtract, TextFileIngestedPathAndId) {
    RunResult r = run_ragd({"extract", "-m", model_, "--schema", schema_, "--seed", "3", "--temp",
                            "0.7", "-t", "1", doc_});
    expect_valid(r);
    // Greedy (the default) is repeatable.
    RunResult a = run_ragd({"extract", "-m", model_, "--schema", schema_, "-t", "1", doc_});
    RunResult b = run_ragd({"extract", "-m", model_, "--schema", schema_, "-t", "1", doc_});
    expect_valid(a);
    EXPECT_EQ(a.out, b.out);

    const std::string data = dir_ / "data";
    ASSERT_EQ(run_ragd({"ingest", "--data", data, doc_}).exit_code, 0);
    RunResult p =
        run_ragd({"extract", "--data", data, "-m", model_, "--schema", schema_, "-t", "1", doc_});
    expect_valid(p);
    json ev = json::parse(p.out)["evidence"];
    for (auto& [ptr, cites] : ev.items())
        for (const json& c : cites) EXPECT_GT(c["document_id"].get<int64_t>(), 0) << ptr;
    RunResult id =
        run_ragd({"extract", "--data", data, "-m", model_, "--schema", schema_, "-t", "1", "1"});
    expect_valid(id);
    RunResult none = run_ragd({"extract", "--data", data, "-m", model_, "--schema", schema_, "99"});
    EXPECT_NE(none.exit_code, 0);
    EXPECT_NE(none.err.find("no document"), std::string::npos) << none.err;
}

TEST_F(CliExtract, BadSchemaAndUsageErrors) {
    const std::string bad = dir_ / "bad.json";
    test::write_file(bad, R"({"type":"string","pattern":"^a"})");
    RunResult r = run_ragd({"extract", "-m", model_, "--schema", bad, doc_});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("pattern"), std::string::npos) << r.err;
    test::write_file(bad, "{not json");
    r = run_ragd({"extract", "-m", model_, "--schema", bad, doc_});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
    r = run_ragd({"extract", "--schema", schema_, doc_});
    EXPECT_EQ(r.exit_code, 2);
    r = run_ragd({"extract", "-m", model_, "--schema", schema_, dir_ / "missing.txt"});
    EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace ragd
