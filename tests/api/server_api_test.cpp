// The API in-process (api/server.h Api::handle) with a fake Generator plugged in: the hook
// the inference engine will use. Checks the OpenAI shapes (objects and SSE chunks) the
// routes build around whatever a Generator returns, and that parameters reach it
// validated. No model is involved: the fake echoes.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"
#include "config/config.h"
#include "ingest/store.h"
#include "tests/api/server_client.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using test::TempDir;

// Answers "echo: <last message>" in word-sized pieces; embeds as [length, 1].
class FakeGenerator : public Generator {
  public:
    std::string model_id() const override { return "fake-echo"; }

    Generation chat(const std::vector<ChatMessage>& messages, const GenerationParams& p,
                    const TokenSink& sink) override {
        {
            std::lock_guard lock(mu);
            last_messages = messages;
        }
        return run("echo: " + messages.back().content, p, sink);
    }
    Generation complete(const std::string& prompt, const GenerationParams& p,
                        const TokenSink& sink) override {
        return run(prompt + " and so on", p, sink);
    }
    std::vector<std::vector<float>> embed(const std::vector<std::string>& inputs,
                                          int* prompt_tokens) override {
        if (inputs[0] == "unsupported") throw Error(Error::Code::Unsupported, "not an embedder");
        std::vector<std::vector<float>> out;
        for (const std::string& s : inputs) {
            out.push_back({static_cast<float>(s.size()), 1.0f});
            *prompt_tokens += 1;
        }
        return out;
    }

    // "Generated: <question> (from N passages) [1]", cited to the first passage.
    Answer answer(const std::string& question, const std::vector<Passage>& passages,
                  const GenerationParams& p, const TokenSink& sink, Generation* stats) override {
        *stats = run("Generated: " + question + " (from " + std::to_string(passages.size()) +
                         " passages) [1]",
                     p, sink);
        Answer a;
        a.text = stats->text;
        if (!passages.empty()) {
            Citation c;
            c.number = passages[0].number;
            c.chunk_id = passages[0].hit.chunk.id;
            c.document_id = passages[0].hit.chunk.document_id;
            c.document = passages[0].hit.chunk.document;
            c.quote = passages[0].hit.chunk.text;
            a.citations.push_back(c);
        }
        return a;
    }

    std::mutex mu;
    GenerationParams last;
    std::vector<ChatMessage> last_messages;
    int pieces_sent = 0;
    bool stopped_by_sink = false;

  private:
    Generation run(const std::string& text, const GenerationParams& p, const TokenSink& sink) {
        if (text.find("explode") != std::string::npos)
            throw Error(Error::Code::InvalidArgument, "the prompt does not fit the context");
        std::lock_guard lock(mu);
        last = p;
        pieces_sent = 0;
        stopped_by_sink = false;
        Generation g;
        g.prompt_tokens = 3;
        size_t pos = 0;
        while (pos < text.size() && g.completion_tokens < p.max_tokens) {
            size_t sp = text.find(' ', pos + 1);
            std::string piece =
                text.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
            pos = sp == std::string::npos ? text.size() : sp;
            g.text += piece;
            ++g.completion_tokens;
            ++pieces_sent;
            if (sink && !sink(piece)) {
                stopped_by_sink = true;
                break;
            }
        }
        g.finish_reason = pos < text.size() ? "length" : "stop";
        return g;
    }
};

// Collects what a streamed response writes; can refuse writes after a number of them.
class CaptureWriter : public BodyWriter {
  public:
    bool write(std::string_view data) override {
        if (limit >= 0 && writes >= limit) {
            gone = true;
            return false;
        }
        ++writes;
        out += data;
        return true;
    }
    bool cancelled() const override { return gone; }
    std::string out;
    int writes = 0;
    int limit = -1;  // -1: no limit
    bool gone = false;
};

class ApiWithModel : public ::testing::Test {
  protected:
    void SetUp() override {
        std::filesystem::create_directories(dir_ / "data");
        lock_ = DataDirLock::try_acquire(dir_ / "data");
        ASSERT_TRUE(lock_);
        ServerConfig sc;
        sc.data_dir = dir_ / "data";
        sc.max_tokens_limit = 32;
        sc.generator = gen_;
        api_ = std::make_unique<Api>(sc, std::vector<std::string>{});
    }

    HttpResponse post(const std::string& path, const json& body) {
        return post_text(path, body.dump());
    }
    HttpResponse post_text(const std::string& path, const std::string& body) {
        HttpRequest r;
        r.method = "POST";
        r.path = r.target = path;
        r.headers["host"] = "127.0.0.1";
        r.body = body;
        return api_->handle(r);
    }
    HttpResponse get(const std::string& path) {
        HttpRequest r;
        r.method = "GET";
        r.path = r.target = path;
        r.headers["host"] = "localhost";
        return api_->handle(r);
    }
    // Runs a streamed response's producer; returns the data payloads.
    std::vector<json> stream(HttpResponse& resp, CaptureWriter& w) {
        EXPECT_TRUE(resp.stream) << resp.body;
        EXPECT_EQ(resp.content_type.rfind("text/event-stream", 0), 0u);
        if (resp.stream) resp.stream(w);
        std::vector<json> events;
        for (const std::string& d : test::sse_data(w.out))
            events.push_back(d == "[DONE]" ? json("[DONE]") : json::parse(d));
        return events;
    }

    TempDir dir_;
    std::unique_ptr<DataDirLock> lock_;
    std::shared_ptr<FakeGenerator> gen_ = std::make_shared<FakeGenerator>();
    std::unique_ptr<Api> api_;
};

TEST_F(ApiWithModel, ChatCompletionObject) {
    HttpResponse r = post("/v1/chat/completions",
                          {{"model", "whatever"},
                           {"messages",
                            {{{"role", "developer"}, {"content", "be brief"}},
                             {{"role", "user"},
                              {"content",
                               {{{"type", "text"}, {"text", "hello"}},
                                {{"type", "text"}, {"text", "there world"}}}}}}},
                           {"max_tokens", 32},
                           {"temperature", 0},
                           {"stop", "END"},
                           {"seed", 42},
                           {"response_format",
                            {{"type", "json_schema"},
                             {"json_schema", {{"name", "s"}, {"schema", {{"type", "object"}}}}}}}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "fake-echo");
    EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
    EXPECT_TRUE(j["created"].is_number_integer());
    ASSERT_EQ(j["choices"].size(), 1u);
    EXPECT_EQ(j["choices"][0]["index"], 0);
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "echo: hello\nthere world");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"],
              json({{"prompt_tokens", 3}, {"completion_tokens", 3}, {"total_tokens", 6}}));
    // What reached the generator: validated, converted.
    EXPECT_EQ(gen_->last.max_tokens, 32);
    EXPECT_EQ(gen_->last.temperature, 0);
    EXPECT_EQ(gen_->last.stop, std::vector<std::string>{"END"});
    EXPECT_EQ(gen_->last.seed, std::optional<uint64_t>(42));
    EXPECT_EQ(gen_->last.response_format, "json_schema");
    EXPECT_EQ(json::parse(gen_->last.json_schema), json({{"type", "object"}}));
    ASSERT_EQ(gen_->last_messages.size(), 2u);
    EXPECT_EQ(gen_->last_messages[0].role, "system");  // "developer" is OpenAI's new name

    // max_tokens caps the generation; the default respects max_tokens_limit (32 < 512).
    r = post("/v1/chat/completions",
             {{"messages", {{{"role", "user"}, {"content", "a b c d"}}}}, {"max_tokens", 2}});
    j = json::parse(r.body);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 2);
    post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}});
    EXPECT_EQ(gen_->last.max_tokens, 32);
    // Validation still comes first.
    EXPECT_EQ(post("/v1/chat/completions",
                   {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", 33}})
                  .status,
              400);
    // A generator error is the JSON error shape with its status.
    r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "explode"}}}}});
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(json::parse(r.body)["error"]["message"].is_string());
}

TEST_F(ApiWithModel, JsonSchemaReachesTheGeneratorInTheClientsKeyOrder) {
    // Properties are generated in schema order, and json sorts keys: "zeta" must stay
    // before "alpha" on both endpoints (the exact text: ordered_json dumps it compactly).
    const std::string schema =
        R"({"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}},)"
        R"("required":["zeta","alpha"]})";
    const std::string format =
        R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":)" + schema +
        "}}";
    for (const auto& [path, input] :
         {std::pair<std::string, std::string>{"/v1/chat/completions",
                                              R"("messages":[{"role":"user","content":"hi"}])"},
          {"/v1/completions", R"("prompt":"hi")"}}) {
        HttpResponse r = post_text(path, "{" + input + "," + format + "}");
        ASSERT_EQ(r.status, 200) << path << ": " << r.body;
        EXPECT_EQ(gen_->last.response_format, "json_schema") << path;
        EXPECT_EQ(gen_->last.json_schema, schema) << path;
    }
}

TEST_F(ApiWithModel, ChatCompletionStreamChunks) {
    HttpResponse r =
        post("/v1/chat/completions",
             {{"messages", {{{"role", "user"}, {"content", "one two three"}}}}, {"stream", true}});
    ASSERT_EQ(r.status, 200);
    CaptureWriter w;
    std::vector<json> ev = stream(r, w);
    ASSERT_GE(ev.size(), 4u) << w.out;
    EXPECT_EQ(ev.back(), "[DONE]");
    std::string content;
    std::string id = ev[0]["id"];
    for (size_t i = 0; i + 1 < ev.size(); ++i) {
        EXPECT_EQ(ev[i]["object"], "chat.completion.chunk") << ev[i];
        EXPECT_EQ(ev[i]["id"], id) << "one id per stream";
        EXPECT_EQ(ev[i]["model"], "fake-echo");
        ASSERT_EQ(ev[i]["choices"].size(), 1u);
        const json& c = ev[i]["choices"][0];
        if (i == 0) {
            EXPECT_EQ(c["delta"]["role"], "assistant");
        }
        if (i + 2 < ev.size()) {
            EXPECT_TRUE(c["finish_reason"].is_null()) << ev[i];
        }
        if (c["delta"].contains("content")) content += c["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(content, "echo: one two three");
    EXPECT_EQ(ev[ev.size() - 2]["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(ev[ev.size() - 2]["choices"][0]["delta"], json::object());

    // The client leaves after two events: the sink says so and generation stops early.
    r = post("/v1/chat/completions",
             {{"messages", {{{"role", "user"}, {"content", "a b c d e f g"}}}}, {"stream", true}});
    CaptureWriter gone;
    gone.limit = 2;
    stream(r, gone);
    EXPECT_TRUE(gen_->stopped_by_sink);
    EXPECT_EQ(gen_->pieces_sent, 2);  // first event is the role; pieces 1 sent, 2 refused
    EXPECT_EQ(gone.out.find("[DONE]"), std::string::npos);

    // An error once streaming has begun is an error event (the status is already sent).
    r = post("/v1/chat/completions",
             {{"messages", {{{"role", "user"}, {"content", "explode"}}}}, {"stream", true}});
    CaptureWriter err;
    ev = stream(r, err);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back()["error"]["type"], "invalid_request_error") << err.out;
}

TEST_F(ApiWithModel, CompletionsObjectAndStream) {
    HttpResponse r = post("/v1/completions", {{"prompt", "Once upon"}, {"max_tokens", 10}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
    EXPECT_EQ(j["choices"][0]["text"], "Once upon and so on");
    EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
    EXPECT_EQ(j["usage"]["completion_tokens"], 5);

    r = post("/v1/completions", {{"prompt", {"Once upon"}}, {"stream", true}});
    CaptureWriter w;
    std::vector<json> ev = stream(r, w);
    ASSERT_GE(ev.size(), 3u);
    EXPECT_EQ(ev.back(), "[DONE]");
    std::string text;
    for (size_t i = 0; i + 1 < ev.size(); ++i) {
        EXPECT_EQ(ev[i]["object"], "text_completion");
        text += ev[i]["choices"][0]["text"].get<std::string>();
    }
    EXPECT_EQ(text, "Once upon and so on");
    EXPECT_EQ(ev[ev.size() - 2]["choices"][0]["finish_reason"], "stop");
}

TEST_F(ApiWithModel, EmbeddingsFloatAndBase64) {
    HttpResponse r = post("/v1/embeddings", {{"input", {"abc", "hello"}}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "list");
    EXPECT_EQ(j["model"], "fake-echo");
    ASSERT_EQ(j["data"].size(), 2u);
    EXPECT_EQ(j["data"][1]["object"], "embedding");
    EXPECT_EQ(j["data"][1]["index"], 1);
    EXPECT_EQ(j["data"][1]["embedding"], json({5.0, 1.0}));
    EXPECT_EQ(j["usage"], json({{"prompt_tokens", 2}, {"total_tokens", 2}}));

    r = post("/v1/embeddings", {{"input", "abc"}, {"encoding_format", "base64"}});
    j = json::parse(r.body);
    // [3.0f, 1.0f] little-endian: 00 00 40 40 00 00 80 3f.
    EXPECT_EQ(j["data"][0]["embedding"], "AABAQAAAgD8=");

    r = post("/v1/embeddings", {{"input", "unsupported"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "model_cannot_embed");
}

TEST_F(ApiWithModel, ModelsListTheLoadedModelAndTokensAreCounted) {
    HttpResponse m = get("/v1/models");
    json j = json::parse(m.body);
    ASSERT_EQ(j["data"].size(), 1u);
    EXPECT_EQ(j["data"][0]["id"], "fake-echo");
    EXPECT_EQ(j["data"][0]["object"], "model");

    post("/v1/completions", {{"prompt", "a b"}});  // "a b and so on": 5 pieces
    HttpResponse s = post("/v1/chat/completions",
                          {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stream", true}});
    CaptureWriter w;
    stream(s, w);        // "echo: x": 2 pieces
    s.stream = nullptr;  // as the transport does once the stream ended: now it is recorded
    std::string metrics = get("/metrics").body;
    EXPECT_NE(metrics.find("\nragd_tokens_generated_total 7\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("\nragd_model_loaded 1\n"), std::string::npos);
    EXPECT_NE(
        metrics.find(R"(ragd_http_requests_total{route="/v1/chat/completions",status="200"} 1)"),
        std::string::npos)
        << "a stream is recorded once it ends";
}

TEST_F(ApiWithModel, AskAnswersThroughTheModel) {
    api_->start_ingest();
    HttpRequest up;
    up.method = "POST";
    up.path = "/v1/documents";
    up.target = "/v1/documents?filename=gulls.txt";
    up.query["filename"] = "gulls.txt";
    up.headers["host"] = "127.0.0.1";
    up.body = "The gullhaven lighthouse keeper feeds the gulls at dawn.\n";
    HttpResponse r = api_->handle(up);
    ASSERT_EQ(r.status, 202) << r.body;
    int64_t job = json::parse(r.body)["job_id"];
    json state;
    for (auto deadline = test::Clock::now() + std::chrono::seconds(30);
         test::Clock::now() < deadline;) {
        state = json::parse(get("/v1/jobs/" + std::to_string(job)).body);
        if (state["indexed"] == true || state["state"] == "failed") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(state["indexed"], true) << state.dump();

    const std::string q = "who feeds the gullhaven gulls?";
    r = post("/v1/ask", {{"question", q}, {"max_tokens", 32}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["mode"], "generated");
    EXPECT_EQ(j["answer"], "Generated: " + q + " (from 1 passages) [1]");
    ASSERT_EQ(j["citations"].size(), 1u);
    EXPECT_EQ(j["citations"][0]["document"], "gulls.txt");

    r = post("/v1/ask", {{"question", q}, {"stream", true}});
    CaptureWriter w;
    std::vector<json> ev = stream(r, w);
    ASSERT_GE(ev.size(), 4u) << w.out;
    EXPECT_EQ(ev.back(), "[DONE]");
    std::string text;
    for (size_t i = 0; i + 2 < ev.size(); ++i) text += ev[i]["delta"].get<std::string>();
    EXPECT_EQ(text, j["answer"]);
    EXPECT_EQ(ev[ev.size() - 2]["citations"], j["citations"]);
    EXPECT_EQ(ev[ev.size() - 2]["mode"], "generated");
    EXPECT_EQ(post("/v1/ask", {{"question", q}, {"max_tokens", 33}}).status, 400);
    api_->stop_ingest();
}

TEST_F(ApiWithModel, PolicySpoolsUploadsOnlyAndRunsHealthInline) {
    HttpRequest h;
    h.method = "GET";
    h.path = "/health";
    EXPECT_TRUE(api_->policy(h).run_inline);
    h.path = "/v1/search";
    h.method = "POST";
    RequestPolicy p = api_->policy(h);
    EXPECT_FALSE(p.run_inline || p.spool_body);
    EXPECT_EQ(p.max_body_bytes, ServerConfig().max_body_bytes);
    h.path = "/v1/documents";
    EXPECT_FALSE(api_->policy(h).spool_body) << "JSON {path}";
    h.query["filename"] = "a.txt";
    EXPECT_TRUE(api_->policy(h).spool_body);
    EXPECT_EQ(api_->policy(h).max_body_bytes, ServerConfig().max_upload_bytes);
    h.query.clear();
    h.headers["content-type"] = "Multipart/Form-Data; boundary=x";
    EXPECT_TRUE(api_->policy(h).spool_body);
}

}  // namespace
}  // namespace ragd
