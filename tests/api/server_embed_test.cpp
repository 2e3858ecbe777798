// `ragd serve` with models (issue 6): /v1/embeddings from --embed-model, an embedder
// switch re-embedding in the background (GET /v1/jobs), the reranker in /v1/search and
// `search --json`. Random-weight bert models from the tests' writer: numbers meaningless,
// shapes and plumbing not.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "tests/api/server_client.h"
#include "tests/generate/model_writer.h"

namespace ragd::test {
namespace {

namespace fs = std::filesystem;

std::string write_bert(const std::string& path, bool reranker, uint64_t seed = 1) {
    BertSpec spec;
    spec.n_embd = 32;
    spec.n_ff = 64;
    spec.n_ctx = 128;
    spec.seed = seed;
    spec.cls_head = reranker;
    spec.pooling = reranker ? 4 : 2;
    write_bert_model(path, spec);
    return path;
}

std::vector<uint8_t> unbase64(const std::string& s) {
    static const std::string abc =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<uint8_t> out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        if (c == '=') break;
        acc = (acc << 6) | uint32_t(abc.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(uint8_t(acc >> bits));
        }
    }
    return out;
}

TEST(ServeModels, EmbeddingsComeFromTheEmbedModel) {
    TempDir dir;
    std::string model = write_bert(dir / "e.gguf", false);
    Server server(dir / "data", {"--api-key", kKey, "--embed-model", model});
    int port = server.port();
    ASSERT_GT(port, 0) << server.stderr_text();

    Resp r = call(port, "POST", "/v1/embeddings",
                  R"({"input": ["the license grants you the right", "hello world"],
                      "model": "anything"})");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = r.j();
    EXPECT_EQ(j["object"], "list");
    EXPECT_EQ(j["model"], "ragd-test-bert");
    ASSERT_EQ(j["data"].size(), 2u);
    for (int i = 0; i < 2; ++i) {
        const json& d = j["data"][size_t(i)];
        EXPECT_EQ(d["object"], "embedding");
        EXPECT_EQ(d["index"], i);
        ASSERT_EQ(d["embedding"].size(), 32u);
        double ss = 0;
        for (const json& x : d["embedding"]) ss += x.get<double>() * x.get<double>();
        EXPECT_NEAR(ss, 1.0, 1e-3);
    }
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 4);
    EXPECT_EQ(j["usage"]["prompt_tokens"], j["usage"]["total_tokens"]);

    r = call(port, "POST", "/v1/embeddings",
             R"({"input": "hello world", "encoding_format": "base64"})");
    ASSERT_EQ(r.status, 200) << r.body;
    std::vector<uint8_t> bytes = unbase64(r.j()["data"][0]["embedding"]);
    ASSERT_EQ(bytes.size(), 32u * 4);
    for (int d = 0; d < 32; ++d) {
        float f;
        std::memcpy(&f, bytes.data() + 4 * d, 4);
        EXPECT_NEAR(f, j["data"][1]["embedding"][size_t(d)].get<double>(), 1e-6);
    }
    expect_error(call(port, "POST", "/v1/embeddings", R"({"input": [1, 2]})"), 400, "tokens");

    // Documents are embedded by the model: search finds them, and the metrics say so.
    Resp up = call(port, "POST", "/v1/documents?filename=a.txt",
                   "The tenant must give three months written notice.\n\nRent is due monthly.");
    ASSERT_EQ(up.status, 202) << up.body;
    wait_for_job(port, up.j()["job_id"].get<int64_t>());
    r = call(port, "POST", "/v1/search", R"({"query": "written notice", "mode": "vector"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(r.j().empty());
    Resp m = call(port, "GET", "/metrics");
    EXPECT_NE(m.body.find("ragd_embed_seconds_total"), std::string::npos);
    EXPECT_EQ(server.terminate(), 0);
    EXPECT_NE(read_file(dir / "data/embedders.json").find("e.gguf"), std::string::npos);
}

// Indexed with the built-in embedder, served with a model: the job re-embeds in the
// background while searches keep working, then the model's vectors serve.
TEST(ServeModels, SwitchingModelsReembedsInTheBackground) {
    TempDir dir;
    std::string data = dir / "data";
    RunResult in = run_ragd({"ingest", "--data", data, source_dir() + "/corpus"});
    ASSERT_EQ(in.exit_code, 0) << in.err;
    std::string model = write_bert(dir / "e.gguf", false);

    Server server(data, {"--api-key", kKey, "--embed-model", model});
    int port = server.port();
    ASSERT_GT(port, 0) << server.stderr_text();
    Resp list = call(port, "GET", "/v1/jobs");
    ASSERT_EQ(list.status, 200) << list.body;
    json first = list.j()["data"][0];
    ASSERT_EQ(first["kind"], "reembed") << list.body;
    EXPECT_EQ(first["from_embedder"], "hashed-ngram-v2");
    EXPECT_EQ(first["to_embedder"].get<std::string>().rfind("gguf:ragd-test-bert:", 0), 0u);
    EXPECT_EQ(list.j()["data"][1]["kind"], "ingest");
    std::string id = first["id"];
    json job;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
        // Searches are answered throughout (old vectors, then new).
        Resp s = call(port, "POST", "/v1/search", R"({"query": "termination notice", "k": 3})");
        ASSERT_EQ(s.status, 200) << s.body;
        EXPECT_EQ(s.j().size(), 3u);
        Resp r = call(port, "GET", "/v1/jobs/" + id);
        ASSERT_EQ(r.status, 200) << r.body;
        job = r.j();
        if (job["state"] != "running") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(job["state"], "done") << job.dump();
    EXPECT_EQ(job["progress"]["done"], job["progress"]["total"]);
    EXPECT_GT(job["progress"]["total"].get<int>(), 20);
    expect_error(call(port, "GET", "/v1/jobs/reembed-1"), 404, "unknown re-embed job");
    expect_error(call(port, "GET", "/v1/jobs?state=bogus"), 400, "bad state");
    EXPECT_EQ(server.terminate(), 0);

    // The data directory remembers the model: the CLI searches with it, no flag needed.
    RunResult st = run_ragd({"stats", "--data", data, "--json"});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    json stats = json::parse(st.out);
    EXPECT_EQ(stats["vectors"], stats["chunks"]);
    EXPECT_EQ(stats["vectors_embedder"], job["to_embedder"]);
    EXPECT_EQ(stats["embedder"], job["to_embedder"]);
    EXPECT_FALSE(fs::exists(data + "/vectors.faiss.next"));
}

TEST(ServeModels, RerankerReportsBothScores) {
    TempDir dir;
    std::string data = dir / "data";
    RunResult in = run_ragd({"ingest", "--data", data, source_dir() + "/corpus"});
    ASSERT_EQ(in.exit_code, 0) << in.err;
    std::string rr = write_bert(dir / "r.gguf", true);

    // search --json
    RunResult cli = run_ragd({"search", "--data", data, "--json", "-k", "4", "--rerank-model", rr,
                              "--rerank-top-n", "10", "late payment interest"});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    json hits = json::parse(cli.out);
    ASSERT_EQ(hits.size(), 4u);
    for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_TRUE(hits[i]["score"].is_number());
        EXPECT_TRUE(hits[i]["rerank_score"].is_number());
        EXPECT_LE(hits[i]["fused_rank"].get<int>(), 10);
        if (i) {
            EXPECT_GE(hits[i - 1]["rerank_score"], hits[i]["rerank_score"]);
        }
    }
    RunResult plain = run_ragd({"search", "--data", data, "--json", "late payment interest"});
    ASSERT_EQ(plain.exit_code, 0);
    for (const json& h : json::parse(plain.out)) EXPECT_FALSE(h.contains("rerank_score"));

    // /v1/search, the same numbers.
    Server server(data, {"--api-key", kKey, "--rerank-model", rr, "--rerank-top-n", "10"});
    ASSERT_GT(server.port(), 0) << server.stderr_text();
    Resp r =
        call(server.port(), "POST", "/v1/search", R"({"query": "late payment interest", "k": 4})");
    ASSERT_EQ(r.status, 200) << r.body;
    json api = r.j();
    ASSERT_EQ(api.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(api[i]["chunk_id"], hits[i]["chunk_id"]);
        EXPECT_NEAR(api[i]["rerank_score"].get<double>(), hits[i]["rerank_score"].get<double>(),
                    1e-4);
        EXPECT_DOUBLE_EQ(api[i]["score"].get<double>(), hits[i]["score"].get<double>());
    }
}

TEST(ServeModels, BadModelFilesAreOneLineErrors) {
    TempDir dir;
    std::string emb = write_bert(dir / "e.gguf", false);
    RunResult r = run_ragd(
        {"serve", "--data", dir / "d", "--port", "0", "--embed-model", dir / "missing.gguf"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("missing.gguf: no such file"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    r = run_ragd({"serve", "--data", dir / "d", "--port", "0", "--rerank-model", emb});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("classification head"), std::string::npos) << r.err;
    write_file(dir / "cfg.json", R"({"rerank_top_n": 0})");
    r = run_ragd({"serve", "--data", dir / "d", "--config", dir / "cfg.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("rerank_top_n"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ragd::test
