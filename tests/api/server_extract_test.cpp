// POST /v1/extract and response_format on /v1/chat/completions, end to end: the real
// binary with a random-weight model, so outputs are noise, but always JSON valid against
// the schema, with evidence keyed by JSON pointers; bad schemas are 400s naming the
// problem, unknown documents 404s.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/api/server_client.h"
#include "tests/generate/model_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using json = nlohmann::json;
using namespace ragd::test;

const char* kContract =
    "SERVICES AGREEMENT\n\nThis Agreement is made on 1 March 2024 between Acme Ltd and Beta "
    "LLC.\n\nEither party may terminate this Agreement by giving 60 days written notice. This "
    "Agreement is governed by the laws of England and Wales.\n";

const char* kSchema = R"({"type":"object","properties":{
    "parties":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":2},
    "effective_date":{"type":"string","format":"date"},
    "notice_days":{"type":"integer","minimum":0,"maximum":365}},
    "required":["parties","effective_date","notice_days"],"additionalProperties":false})";

class ServeExtract : public ::testing::Test {
  protected:
    void SetUp() override {
        ModelSpec s;
        s.n_embd = 64;
        s.n_layer = 1;
        s.n_ff = 128;
        s.n_ctx = 2048;
        model_ = dir_ / "tiny.gguf";
        make_model(s).write(model_);
        write_file(dir_ / "contract.txt", kContract);
        RunResult r = run_ragd({"ingest", "--data", dir_ / "data", dir_ / "contract.txt"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        server_ = std::make_unique<Server>(
            dir_ / "data",
            std::vector<std::string>{"--api-key", kKey, "-m", model_, "-c", "2048", "-t", "1"});
        ASSERT_GT(server_->port(), 0);
    }
    int port() const { return server_->port(); }
    TempDir dir_;
    std::string model_;
    std::unique_ptr<Server> server_;
};

void expect_contract_shape(const json& data) {
    ASSERT_TRUE(data.is_object()) << data;
    ASSERT_TRUE(data["parties"].is_array());
    EXPECT_LE(data["parties"].size(), 2u);
    ASSERT_TRUE(data["effective_date"].is_string());
    EXPECT_EQ(data["effective_date"].get<std::string>().size(), 10u);
    ASSERT_TRUE(data["notice_days"].is_number_integer());
    EXPECT_GE(data["notice_days"].get<int>(), 0);
    EXPECT_LE(data["notice_days"].get<int>(), 365);
    EXPECT_EQ(data.size(), 3u);
}

TEST_F(ServeExtract, TextAndDocumentGiveSchemaValidDataWithEvidence) {
    // The body written by hand: json would sort the schema's keys.
    Resp r = call(port(), "POST", "/v1/extract",
                  R"({"text": )" + json(kContract).dump() + R"(, "schema": )" + kSchema +
                      R"(, "seed": 3, "max_tokens": 96})");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = r.j();
    expect_contract_shape(j["data"]);
    // Schema order kept in the body: parties, effective_date, notice_days.
    EXPECT_LT(r.body.find("\"parties\""), r.body.find("\"effective_date\""));
    ASSERT_TRUE(j["evidence"].is_object());
    EXPECT_TRUE(j["evidence"].contains("/effective_date"));
    EXPECT_TRUE(j["evidence"].contains("/notice_days"));
    for (auto& [ptr, cites] : j["evidence"].items()) {
        EXPECT_EQ(ptr[0], '/');
        EXPECT_TRUE(cites.is_array());
    }

    Resp docs = call(port(), "GET", "/v1/documents");
    ASSERT_EQ(docs.status, 200) << docs.body;
    json list = docs.j();
    json arr = list.is_array() ? list : list["data"];
    ASSERT_FALSE(arr.empty()) << docs.body;
    int64_t id = arr[0]["id"].get<int64_t>();
    Resp d = call(port(), "POST", "/v1/extract",
                  json({{"document_id", id},
                        {"schema", json::parse(kSchema)},
                        {"instructions", "the contract terms"},
                        {"temperature", 0.8},
                        {"seed", 1},
                        {"max_tokens", 96}})
                      .dump());
    ASSERT_EQ(d.status, 200) << d.body;
    expect_contract_shape(d.j()["data"]);

    Resp missing =
        call(port(), "POST", "/v1/extract",
             json({{"document_id", id + 1000}, {"schema", json::parse(kSchema)}}).dump());
    expect_error(missing, 404, "unknown document");
}

TEST_F(ServeExtract, BadSchemasAre400sNamingTheProblem) {
    auto bad = [&](const json& schema, const std::string& needle) {
        Resp r =
            call(port(), "POST", "/v1/extract", json({{"text", "x"}, {"schema", schema}}).dump());
        expect_error(r, 400, needle);
        EXPECT_NE(r.j()["error"]["message"].get<std::string>().find(needle), std::string::npos)
            << r.body;
        // The same on chat completions, streamed or not: nothing is generated.
        for (bool stream : {false, true}) {
            Resp c = call(port(), "POST", "/v1/chat/completions",
                          json({{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                {"stream", stream},
                                {"response_format",
                                 {{"type", "json_schema"},
                                  {"json_schema", {{"name", "x"}, {"schema", schema}}}}}})
                              .dump());
            expect_error(c, 400, needle + " (chat)");
        }
    };
    bad(json::parse(R"({"type":"string","pattern":"^a"})"), "pattern");
    bad(json::parse(R"({"type":"object","properties":{"a":{"not":{}}}})"), "#/properties/a");
    bad(json::parse(R"({"$ref":"#"})"), "base case");
    std::string deep = R"({"type":"string"})";
    for (int i = 0; i < 40; ++i) deep = R"({"type":"array","items":)" + deep + "}";
    bad(json::parse(deep), "nesting deeper");
    bad(json({{"type", "string"}, {"description", std::string(1 << 20, 'x')}}), "over the limit");
}

TEST_F(ServeExtract, ResponseFormatOnChatCompletions) {
    const json msgs = {{{"role", "user"}, {"content", "Give me JSON."}}};
    Resp o = call(port(), "POST", "/v1/chat/completions",
                  json({{"messages", msgs},
                        {"max_tokens", 40},
                        {"temperature", 1},
                        {"seed", 5},
                        {"response_format", {{"type", "json_object"}}}})
                      .dump());
    ASSERT_EQ(o.status, 200) << o.body;
    std::string content = o.j()["choices"][0]["message"]["content"];
    json obj = json::parse(content, nullptr, false);
    EXPECT_TRUE(obj.is_object()) << content;

    json rf = {{"type", "json_schema"},
               {"json_schema", {{"name", "contract"}, {"schema", json::parse(kSchema)}}}};
    Resp s =
        call(port(), "POST", "/v1/chat/completions",
             json({{"messages", msgs}, {"max_tokens", 96}, {"seed", 9}, {"response_format", rf}})
                 .dump());
    ASSERT_EQ(s.status, 200) << s.body;
    expect_contract_shape(
        json::parse(s.j()["choices"][0]["message"]["content"].get<std::string>()));

    // Streamed: the deltas joined are the same kind of document.
    Resp st = call(port(), "POST", "/v1/chat/completions",
                   json({{"messages", msgs},
                         {"max_tokens", 96},
                         {"seed", 9},
                         {"stream", true},
                         {"response_format", rf}})
                       .dump());
    ASSERT_EQ(st.status, 200) << st.body;
    std::string joined;
    size_t at = 0;
    while ((at = st.body.find("data: ", at)) != std::string::npos) {
        size_t end = st.body.find("\n", at);
        std::string line = st.body.substr(at + 6, end - at - 6);
        at = end;
        if (line == "[DONE]") break;
        json ev = json::parse(line, nullptr, false);
        if (ev.is_object() && ev.contains("choices") && !ev["choices"].empty() &&
            ev["choices"][0].contains("delta") && ev["choices"][0]["delta"].contains("content"))
            joined += ev["choices"][0]["delta"]["content"].get<std::string>();
    }
    expect_contract_shape(json::parse(joined));
}

}  // namespace
}  // namespace ragd
