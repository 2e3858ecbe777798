// `ragd serve -m MODEL.gguf` end to end: the real binary with a random-weight model made
// by the tests' GGUF writer, spoken to over HTTP. The routes' shapes are tested with a
// fake generator in server_api_test; here the engine itself answers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/api/server_client.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using namespace ragd::test;

class ServeModel : public ::testing::Test {
  protected:
    void SetUp() override {
        ModelSpec s;
        s.matrix_type = s.embd_type = s.output_type = gguf::Type::Q8_0;
        s.n_ctx = 4096;  // the test vocabulary has one token per byte
        model_ = dir_ / "tiny-chat.gguf";
        make_model(s).write(model_);
        RunResult r = run_ragd({"ingest", "--data", dir_ / "data", source_dir() + "/corpus"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        server_ = std::make_unique<Server>(
            dir_ / "data",
            std::vector<std::string>{"--api-key", kKey, "-m", model_, "-c", "4096", "-t", "2"});
        ASSERT_GT(server_->port(), 0);
    }
    TempDir dir_;
    std::string model_;
    std::unique_ptr<Server> server_;
};

TEST_F(ServeModel, ModelsListsTheLoadedFile) {
    Resp r = call(server_->port(), "GET", "/v1/models");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    ASSERT_EQ(j["data"].size(), 1u);
    EXPECT_EQ(j["data"][0]["id"], "tiny-chat");
}

// Greedy completions are deterministic: the same request twice gives the same text (the
// second reuses the cached prefix), and max_tokens bounds the usage count.
TEST_F(ServeModel, CompletionsAreGreedyAndBounded) {
    const std::string body =
        R"({"model": "tiny-chat", "prompt": "The notice period is", "max_tokens": 6, "temperature": 0})";
    Resp a = call(server_->port(), "POST", "/v1/completions", body);
    ASSERT_EQ(a.status, 200) << a.body;
    Resp b = call(server_->port(), "POST", "/v1/completions", body);
    ASSERT_EQ(b.status, 200) << b.body;
    json ja = json::parse(a.body), jb = json::parse(b.body);
    EXPECT_EQ(ja["choices"][0]["text"], jb["choices"][0]["text"]);
    EXPECT_LE(ja["usage"]["completion_tokens"].get<int>(), 6);
    EXPECT_EQ(ja["usage"]["prompt_tokens"].get<int>(), 1 + 20);  // BOS + one token per byte
}

TEST_F(ServeModel, ChatStreamsTheSameTextAsTheWholeAnswer) {
    const std::string req =
        R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
            "max_tokens": 8, "temperature": 0)";
    Resp whole = call(server_->port(), "POST", "/v1/chat/completions", req + "}");
    ASSERT_EQ(whole.status, 200) << whole.body;
    std::string expect = json::parse(whole.body)["choices"][0]["message"]["content"];
    Resp stream =
        call(server_->port(), "POST", "/v1/chat/completions", req + R"(, "stream": true})");
    ASSERT_EQ(stream.status, 200) << stream.body;
    std::vector<std::string> events = sse_data(stream.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
        json e = json::parse(events[i]);
        const json& delta = e["choices"][0]["delta"];
        if (delta.contains("content")) text += delta["content"].get<std::string>();
    }
    EXPECT_EQ(text, expect);
}

// /v1/ask answers through the model; its citations are passages the answer cites.
TEST_F(ServeModel, AskUsesTheModel) {
    Resp r = call(server_->port(), "POST", "/v1/ask",
                  R"({"question": "termination notice", "k": 2, "max_tokens": 8})");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_TRUE(j["answer"].is_string());
    ASSERT_TRUE(j["citations"].is_array());
    for (const json& c : j["citations"]) {
        std::string marker = "[";
        marker += std::to_string(c["number"].get<int>());
        EXPECT_NE(j["answer"].get<std::string>().find(marker), std::string::npos);
    }
    Resp m = call(server_->port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("ragd_model_loaded 1"), std::string::npos) << m.body.substr(0, 2000);
}

// A prompt longer than the context is a 400 with the error shape, and the server goes on.
TEST_F(ServeModel, PromptLongerThanTheContextIs400) {
    std::string prompt(5000, 'x');
    Resp r = call(server_->port(), "POST", "/v1/completions",
                  R"({"prompt": ")" + prompt + R"(", "max_tokens": 4})");
    expect_error(r, 400, "long prompt");
    EXPECT_EQ(call(server_->port(), "GET", "/health").status, 200);
}

TEST_F(ServeModel, SamplingParametersAreValidated) {
    Resp r = call(server_->port(), "POST", "/v1/completions",
                  R"({"prompt": "x", "max_tokens": 4, "temperature": -1})");
    expect_error(r, 400, "negative temperature");
    // response_format constrains the output (generate/json_schema.h): a JSON object, or
    // a 400 when the budget cannot hold one.
    r = call(server_->port(), "POST", "/v1/completions",
             R"({"prompt": "x", "max_tokens": 8, "response_format": {"type": "json_object"}})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(json::parse(r.j()["choices"][0]["text"].get<std::string>()).is_object()) << r.body;
    r = call(server_->port(), "POST", "/v1/completions",
             R"({"prompt": "x", "max_tokens": 1, "response_format": {"type": "json_object"}})");
    expect_error(r, 400, "no room for a JSON object");
}

}  // namespace
}  // namespace ragd
