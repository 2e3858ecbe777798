// Integration tests of `ragd serve`: the real binary on a loopback port, spoken to over
// plain POSIX sockets, so every byte on the wire is the test's choice (limits, slow
// clients, malformed requests).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/api/server_client.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace test;
using test::TempDir;
using test::write_file;

// ---- the shared server: key, 1 s read timeout, 1 MiB bodies, 2 MiB uploads, 8 KiB headers,
// k up to 50, max_tokens up to 64 ----

class Serve : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        fs::create_directories(*dir_ / "root");
        write_file(*dir_ / "root/allowed.txt", "The quarterly audit covers the pelican ledger.\n");
        write_file(*dir_ / "outside.txt", "Secret outside the roots.\n");
        fs::create_symlink(*dir_ / "outside.txt", *dir_ / "root/link.txt");
        json cfg = {{"api_key", kKey},
                    {"read_timeout_s", 1},
                    {"max_body_bytes", 1 << 20},
                    {"max_upload_bytes", 2 << 20},
                    {"max_header_bytes", 8192},
                    {"allowed_roots", {*dir_ / "root"}},
                    {"threads", 2},
                    {"handler_threads", 4},
                    {"workers", 1},
                    {"max_k", 50},
                    {"max_tokens_limit", 64},
                    {"max_connections", 64}};
        write_file(*dir_ / "ragd.json", cfg.dump());
        server_ = new Server(*dir_ / "data", {"--config", *dir_ / "ragd.json"});
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }
    static int port() { return server_->port(); }
    static TempDir* dir_;
    static Server* server_;
};
TempDir* Serve::dir_ = nullptr;
Server* Serve::server_ = nullptr;

TEST_F(Serve, HealthIsOpenAndEveryOtherRouteNeedsTheKey) {
    Resp h = call(port(), "GET", "/health", "", "");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.j()["status"], "ok");
    EXPECT_EQ(h.headers.count("access-control-allow-origin"), 0u);  // no CORS

    const std::vector<std::pair<std::string, std::string>> routes = {
        {"GET", "/metrics"},
        {"POST", "/v1/search"},
        {"POST", "/v1/ask"},
        {"POST", "/v1/documents"},
        {"POST", "/v1/documents?filename=a.txt"},
        {"GET", "/v1/documents"},
        {"GET", "/v1/documents/1"},
        {"DELETE", "/v1/documents/1"},
        {"GET", "/v1/jobs/1"},
        {"POST", "/v1/chat/completions"},
        {"POST", "/v1/completions"},
        {"POST", "/v1/embeddings"},
        {"POST", "/v1/extract"},
        {"GET", "/v1/models"},
        {"GET", "/no/such/route"}};
    for (const auto& [method, path] : routes) {
        std::string body = method == "POST" ? "{\"query\":\"x\"}" : "";
        expect_error(call(port(), method, path, body, ""), 401, method + " " + path + " no key");
        expect_error(call(port(), method, path, body, "wrong-key"), 401, method + " " + path);
        expect_error(call(port(), method, path, body, kKey + "x"), 401, method + " " + path);
        // Not a bearer token.
        Resp basic = raw(
            port(), request_text(port(), method, path, body, "", {"Authorization: Basic " + kKey}));
        EXPECT_EQ(basic.status, 401) << method << " " << path;
    }
    EXPECT_EQ(call(port(), "GET", "/v1/models").status, 200);

    // The streaming and upload code paths check the key too, before anything is sent or
    // stored.
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "stream": true})", ""), 401,
                 "SSE ask without key");
    expect_error(call(port(), "POST", "/v1/chat/completions",
                      R"({"messages": [{"role": "user", "content": "x"}], "stream": true})", ""),
                 401, "streamed chat without key");
    std::string form = multipart_body("b0undary", {{"nokey-upload.txt", "no key, no file\n"}});
    expect_error(call(port(), "POST", "/v1/documents", form, "",
                      {"Content-Type: multipart/form-data; boundary=b0undary"}),
                 401, "multipart without key");
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(*dir_ / "data", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        EXPECT_NE(it->path().filename(), "nokey-upload.txt") << it->path();
}

TEST_F(Serve, HostHeaderMustNameTheLoopbackServer) {
    std::string p = std::to_string(port());
    for (const std::string& host :
         {"127.0.0.1:" + p, "localhost:" + p, std::string("localhost"), "[::1]:" + p})
        EXPECT_EQ(raw(port(), "GET /health HTTP/1.1\r\nHost: " + host + "\r\n\r\n").status, 200)
            << host;
    for (const std::string& host :
         {std::string("evil.example"), "evil.example:" + p, std::string("127.0.0.1:1"),
          std::string("127.0.0.1.evil.example")})
        expect_error(raw(port(), "GET /health HTTP/1.1\r\nHost: " + host + "\r\n\r\n"), 421, host);
    expect_error(raw(port(), "GET /health HTTP/1.1\r\n\r\n"), 421, "no Host");
}

TEST_F(Serve, SearchValidatesItsInput) {
    Resp ok =
        call(port(), "POST", "/v1/search", R"({"query": "anything", "k": 3, "mode": "keyword"})");
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_TRUE(ok.j().is_array());
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "empty body"},
        {"{", "malformed"},
        {"not json", "not json"},
        {"[1,2]", "not an object"},
        {R"({"k": 3})", "no query"},
        {R"({"query": 5})", "query not a string"},
        {R"({"query": "  "})", "blank query"},
        {R"({"query": "x", "k": -1})", "negative k"},
        {R"({"query": "x", "k": 0})", "zero k"},
        {R"({"query": "x", "k": 101})", "k over max_k"},
        {R"({"query": "x", "k": "5"})", "k a string"},
        {R"({"query": "x", "k": 2.5})", "k a float"},
        {R"({"query": "x", "k": 1e300})", "k huge float"},
        {R"({"query": "x", "k": 18446744073709551615})", "k huge integer"},
        {R"({"query": "x", "k": 99999999999999999999999})", "k beyond 64 bits"},
        {R"({"query": "x", "mode": "fuzzy"})", "bad mode"},
        {R"({"query": "x", "mode": 1})", "mode not a string"},
        {R"({"query": "x", "collection": []})", "collection not a string"},
        {std::string(10000, '['), "10000 levels of ["},
        {std::string(10000, '[') + std::string(10000, ']'), "10000 balanced levels"},
        {"{\"query\": \"caf\xC3\x28\"}", "invalid UTF-8"},
        {"{\"query\": \"\xFF\xFE\"}", "invalid UTF-8 bytes"},
    };
    for (const auto& [body, what] : bad) {
        Resp r = call(port(), "POST", "/v1/search", body);
        expect_error(r, 400, what);
    }
    // Still alive after all of it.
    EXPECT_EQ(call(port(), "GET", "/health").status, 200);
}

// Uploads TEXT as NAME and waits until it is searchable; returns the document id.
int64_t ingest_text(int port, const std::string& name, const std::string& text) {
    Resp up = call(port, "POST", "/v1/documents?filename=" + name, text);
    EXPECT_EQ(up.status, 202) << up.body;
    if (up.status != 202) return 0;
    json job = wait_for_job(port, up.j()["job_id"].get<int64_t>());
    EXPECT_EQ(job["state"], "done") << job.dump();
    return job.value("document_id", json(0)).is_number() ? job["document_id"].get<int64_t>() : 0;
}

TEST_F(Serve, AskAnswersExtractivelyAsJsonOrServerSentEvents) {
    ingest_text(port(), "walrus.txt",
                "The walrusfjord permit costs forty crowns per season. Anglers renew the "
                "walrusfjord permit each spring at the harbour office.\n\nThe harbour office "
                "closes at noon on Sundays.\n");
    const std::string question =
        R"("question": "How much does the walrusfjord permit cost and when is it renewed?")";
    Resp plain = call(port(), "POST", "/v1/ask", "{" + question + ", \"k\": 3}");
    ASSERT_EQ(plain.status, 200) << plain.body;
    json answer = plain.j();
    EXPECT_TRUE(answer["answer"].is_string());
    ASSERT_GE(answer["citations"].size(), 2u) << plain.body;
    EXPECT_EQ(answer["mode"], "extractive");

    // stream: true -> text/event-stream, chunked: one event per sentence, then the
    // citations, then [DONE]; the pieces joined are the JSON answer exactly.
    Resp sse = call(port(), "POST", "/v1/ask", "{" + question + R"(, "k": 3, "stream": true})");
    ASSERT_EQ(sse.status, 200) << sse.body;
    EXPECT_EQ(sse.headers["content-type"].rfind("text/event-stream", 0), 0u);
    EXPECT_EQ(sse.headers["transfer-encoding"], "chunked");
    EXPECT_EQ(sse.headers["cache-control"], "no-store");
    EXPECT_TRUE(sse.complete) << "the last chunk must end the stream";
    EXPECT_GE(sse.chunks.size(), 4u) << "sent as it is produced, not as one buffer";
    std::vector<std::string> events = sse_data(sse.body);
    ASSERT_GE(events.size(), 4u) << sse.body;
    EXPECT_EQ(events.back(), "[DONE]");
    std::string joined;
    for (size_t i = 0; i + 2 < events.size(); ++i) {
        json e = json::parse(events[i]);
        ASSERT_TRUE(e["delta"].is_string()) << events[i];
        joined += e["delta"].get<std::string>();
    }
    EXPECT_EQ(joined, answer["answer"].get<std::string>());
    EXPECT_EQ(events.size() - 2, answer["citations"].size());  // one piece per cited sentence
    json last = json::parse(events[events.size() - 2]);
    EXPECT_EQ(last["citations"], answer["citations"]);
    EXPECT_EQ(last["mode"], "extractive");

    // A stream leaves the connection usable (keep-alive), and HTTP/1.0 gets the same
    // events unframed, ended by closing the connection.
    int fd = connect_to(port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, request_text(port(), "POST", "/v1/ask",
                                          "{" + question + R"(, "stream": true})", kKey)));
    Resp first = read_response(fd);
    EXPECT_TRUE(first.complete);
    ASSERT_TRUE(send_all(fd, request_text(port(), "GET", "/health", "", "")));
    EXPECT_EQ(read_response(fd).status, 200);
    close(fd);
    std::string body10 = "{" + question + R"(, "k": 3, "stream": true})";
    Resp old = raw(port(), "POST /v1/ask HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                               kKey + "\r\nContent-Length: " + std::to_string(body10.size()) +
                               "\r\n\r\n" + body10);
    EXPECT_EQ(old.status, 200);
    EXPECT_EQ(old.headers.count("transfer-encoding"), 0u);
    EXPECT_EQ(old.body, sse.body);

    // Errors before the stream starts are ordinary JSON errors with their status.
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "stream": true, "k": 0})"),
                 400, "bad k with stream");
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "stream": "yes"})"), 400,
                 "stream type");
    expect_error(call(port(), "POST", "/v1/ask", R"({"query": "x"})"), 400, "no question");
    // Generation parameters are checked even while the answer is extractive.
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "max_tokens": 65})"), 400,
                 "max_tokens over max_tokens_limit");
    EXPECT_EQ(call(port(), "POST", "/v1/ask", R"({"question": "x", "max_tokens": 64})").status,
              200);
}

TEST_F(Serve, UnknownIdsAndRoutes) {
    for (std::string id : {"abc", "0", "-1", "1.5", "99999999999999999999999", "1x"}) {
        expect_error(call(port(), "GET", "/v1/documents/" + id), 400, "document " + id);
        expect_error(call(port(), "DELETE", "/v1/documents/" + id), 400, "delete " + id);
        expect_error(call(port(), "GET", "/v1/jobs/" + id), 400, "job " + id);
    }
    expect_error(call(port(), "GET", "/v1/documents/987654"), 404, "unknown document");
    expect_error(call(port(), "DELETE", "/v1/documents/987654"), 404, "delete unknown");
    expect_error(call(port(), "GET", "/v1/jobs/987654"), 404, "unknown job");
    expect_error(call(port(), "GET", "/v1/nothing"), 404, "unknown route");
    Resp m = call(port(), "PUT", "/v1/search", "{}");
    expect_error(m, 405, "wrong method");
    EXPECT_EQ(m.headers["allow"], "POST");
}

TEST_F(Serve, ModelRoutesValidateThenSayNoModelIsLoaded) {
    const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
    // Valid requests: 503 model_not_loaded (streamed ones too: nothing is streamed).
    const std::vector<std::pair<std::string, std::string>> valid = {
        {"/v1/chat/completions", "{" + msgs + "}"},
        {"/v1/chat/completions", "{" + msgs + R"(, "model": "any", "max_tokens": 64,
            "temperature": 0, "top_p": 1, "stop": ["\n"], "seed": 7, "stream": true,
            "response_format": {"type": "json_object"}})"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "system", "content": "be brief"},
             {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
             "max_completion_tokens": 1, "response_format": {"type": "json_schema",
             "json_schema": {"name": "x", "schema": {"type": "object"}}}})"},
        {"/v1/completions", R"({"prompt": "Once upon", "max_tokens": 1, "stream": true})"},
        {"/v1/completions", R"({"prompt": ["Once upon"]})"},
        {"/v1/embeddings", R"({"input": "hello"})"},
        {"/v1/embeddings", R"({"input": ["a", "b"], "encoding_format": "base64"})"},
        {"/v1/extract", R"({"text": "Alice pays Bob.", "schema": {"type": "object"}})"},
    };
    for (const auto& [path, body] : valid) {
        Resp r = call(port(), "POST", path, body);
        expect_error(r, 503, path + " " + body);
        EXPECT_EQ(r.j()["error"]["code"], "model_not_loaded") << path;
        EXPECT_EQ(r.headers["content-type"], "application/json") << path;
    }
    // Bad requests: 400 first, model or not.
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"/v1/chat/completions", "{"},
        {"/v1/chat/completions", "[]"},
        {"/v1/chat/completions", "{}"},
        {"/v1/chat/completions", R"({"messages": []})"},
        {"/v1/chat/completions", R"({"messages": "hi"})"},
        {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})"},
        {"/v1/chat/completions", R"({"messages": [{"role": "user"}]})"},
        {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 5}]})"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": 65})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": 0})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": -1})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": "8"})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": 1.5})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": 1e300})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_tokens": 18446744073709551615})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "max_completion_tokens": 65})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "temperature": 3})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "temperature": "hot"})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "top_p": 1.5})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "n": 2})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "stop": ["a", "b", "c", "d", "e"]})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "stop": 5})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "seed": "x"})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "stream": 1})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "response_format": {"type": "yaml"}})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "response_format": {"type": "json_schema"}})"},
        {"/v1/chat/completions", "{" + msgs + R"(, "model": 5})"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xFF\"}]}"},
        {"/v1/chat/completions", std::string(5000, '[')},
        {"/v1/completions", "{}"},
        {"/v1/completions", R"({"prompt": 5})"},
        {"/v1/completions", R"({"prompt": ["a", "b"]})"},
        {"/v1/completions", R"({"prompt": [[1, 2, 3]]})"},
        {"/v1/completions", R"({"prompt": "x", "max_tokens": 65})"},
        {"/v1/completions", R"({"prompt": "x", "max_tokens": 0})"},
        {"/v1/embeddings", "{}"},
        {"/v1/embeddings", R"({"input": ""})"},
        {"/v1/embeddings", R"({"input": []})"},
        {"/v1/embeddings", R"({"input": [1, 2]})"},
        {"/v1/embeddings", R"({"input": "x", "encoding_format": "hex"})"},
        {"/v1/embeddings", R"({"input": "x", "dimensions": 8})"},
        {"/v1/extract", R"({"schema": {}})"},
        {"/v1/extract", R"({"text": "x", "document_id": 1, "schema": {}})"},
        {"/v1/extract", R"({"text": "x", "schema": "object"})"},
        {"/v1/extract", R"({"document_id": -1, "schema": {}})"},
    };
    for (const auto& [path, body] : bad)
        expect_error(call(port(), "POST", path, body), 400, path + " " + body);
    Resp over = call(port(), "POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 65})");
    EXPECT_NE(over.j()["error"]["message"].get<std::string>().find("64"), std::string::npos)
        << "names the configured bound: " << over.body;

    Resp models = call(port(), "GET", "/v1/models");
    ASSERT_EQ(models.status, 200);
    EXPECT_EQ(models.j(), json::parse(R"({"object":"list","data":[]})"));
}

TEST_F(Serve, KIsBoundedByMaxK) {
    for (const char* route : {"/v1/search", "/v1/ask"}) {
        std::string key = std::string(route) == "/v1/search" ? "query" : "question";
        auto body = [&](const std::string& k) {
            return "{\"" + key + "\": \"pelican ledger\", \"k\": " + k + "}";
        };
        EXPECT_EQ(call(port(), "POST", route, body("50")).status, 200) << route;
        EXPECT_EQ(call(port(), "POST", route, body("1")).status, 200) << route;
        for (const char* k : {"51", "0", "-3", "1e3", "\"5\"", "true", "[5]"})
            expect_error(call(port(), "POST", route, body(k)), 400, std::string(route) + " k=" + k);
        Resp r = call(port(), "POST", route, body("51"));
        EXPECT_NE(r.body.find("50"), std::string::npos) << "names max_k: " << r.body;
    }
}

TEST_F(Serve, PathIngestionIsLimitedToAllowedRoots) {
    auto post_path = [&](const std::string& p) {
        return call(port(), "POST", "/v1/documents", json({{"path", p}}).dump());
    };
    Resp ok = post_path(*dir_ / "root/allowed.txt");
    ASSERT_EQ(ok.status, 202) << ok.body;
    json job = wait_for_job(port(), ok.j()["job_id"].get<int64_t>());
    EXPECT_EQ(job["state"], "done") << job.dump();
    expect_error(post_path(*dir_ / "outside.txt"), 403, "outside");
    expect_error(post_path(*dir_ / "root/../outside.txt"), 403, "dot-dot escape");
    expect_error(post_path(*dir_ / "root/link.txt"), 403, "symlink escape");
    expect_error(post_path("/etc/passwd"), 403, "/etc/passwd");
    expect_error(post_path(*dir_ / "root/missing.txt"), 404, "missing inside");
    expect_error(post_path(*dir_ / "root"), 400, "a folder");
    expect_error(call(port(), "POST", "/v1/documents", R"({"path": 5})"), 400, "path type");
    expect_error(call(port(), "POST", "/v1/documents", R"({})"), 400, "no path");
}

TEST_F(Serve, UploadPollSearchDeleteRoundTrip) {
    std::string text = "The zanzibarquokka clause says renewals need ninety days of notice.\n";
    Resp up = call(port(), "POST",
                   "/v1/documents?filename=..%2F..%2Fetc%2Fquokka.txt&collection=legal", text);
    ASSERT_EQ(up.status, 202) << up.body;
    EXPECT_TRUE(up.j()["document_id"].is_null());
    std::string stored = up.j()["path"];
    EXPECT_EQ(fs::path(stored).filename(), "quokka.txt");
    EXPECT_NE(stored.find("/uploads/"), std::string::npos) << stored;
    json job = wait_for_job(port(), up.j()["job_id"].get<int64_t>());
    ASSERT_EQ(job["state"], "done") << job.dump();
    int64_t doc_id = job["document_id"].get<int64_t>();

    Resp hits = call(port(), "POST", "/v1/search",
                     R"({"query": "zanzibarquokka", "k": 5, "mode": "keyword"})");
    ASSERT_EQ(hits.status, 200) << hits.body;
    ASSERT_EQ(hits.j().size(), 1u) << hits.body;
    json hit = hits.j()[0];
    for (const char* key :
         {"chunk_id", "document", "path", "page", "start", "end", "score", "text"})
        EXPECT_TRUE(hit.contains(key)) << key;
    EXPECT_EQ(hit["document_id"], doc_id);
    EXPECT_EQ(hit["document"], "quokka.txt");
    EXPECT_EQ(hit["collection"], "legal");

    // The same bytes again: the existing document's id comes back at once.
    Resp again = call(port(), "POST", "/v1/documents?filename=quokka.txt", text);
    ASSERT_EQ(again.status, 202);
    EXPECT_EQ(again.j()["document_id"], doc_id);
    wait_for_job(port(), again.j()["job_id"].get<int64_t>());

    Resp doc = call(port(), "GET", "/v1/documents/" + std::to_string(doc_id));
    ASSERT_EQ(doc.status, 200) << doc.body;
    EXPECT_EQ(doc.j()["name"], "quokka.txt");
    bool listed = false;
    for (const json& d : call(port(), "GET", "/v1/documents").j()) listed |= d["id"] == doc_id;
    EXPECT_TRUE(listed);

    Resp del = call(port(), "DELETE", "/v1/documents/" + std::to_string(doc_id));
    ASSERT_EQ(del.status, 200) << del.body;
    EXPECT_FALSE(fs::exists(stored));
    expect_error(call(port(), "GET", "/v1/documents/" + std::to_string(doc_id)), 404, "deleted");
    for (const char* mode : {"keyword", "vector", "hybrid"}) {
        Resp after =
            call(port(), "POST", "/v1/search",
                 json({{"query", "zanzibarquokka renewals"}, {"k", 50}, {"mode", mode}}).dump());
        ASSERT_EQ(after.status, 200);
        for (const json& h : after.j()) EXPECT_NE(h["document_id"], doc_id) << mode;
    }

    expect_error(call(port(), "POST", "/v1/documents?filename=..", "x"), 400, "filename ..");
    expect_error(call(port(), "POST", "/v1/documents?filename=", "x"), 400, "empty filename");
    expect_error(call(port(), "POST", "/v1/documents?filename=a%FF.txt", "x"), 400,
                 "bad UTF-8 name");
    expect_error(call(port(), "POST", "/v1/documents?filename=empty.txt", ""), 400, "empty file");
}

// "name{labels} value" lines of a Prometheus text body, keyed by "name{labels}".
std::map<std::string, double> parse_metrics(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        size_t sp = line.rfind(' ');
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
}

TEST_F(Serve, MetricsArePrometheusText) {
    ingest_text(port(), "metrics.txt", "The heronmarsh survey counted nine herons.\n");
    call(port(), "GET", "/health");
    call(port(), "POST", "/v1/search", "{");
    Resp sse =
        call(port(), "POST", "/v1/ask", R"({"question": "heronmarsh herons", "stream": true})");
    ASSERT_EQ(sse.status, 200);
    // 413 from the transport itself (the body is never read).
    raw(port(), "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
                    "\r\nContent-Length: 99999999\r\n\r\n");
    Resp m = call(port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.headers["content-type"].find("text/plain"), std::string::npos);
    std::map<std::string, double> v = parse_metrics(m.body);
    auto at_least = [&](const std::string& key, double min) {
        ASSERT_TRUE(v.count(key)) << key << "\n" << m.body;
        EXPECT_GE(v[key], min) << key;
    };
    auto exactly = [&](const std::string& key, double want) {
        ASSERT_TRUE(v.count(key)) << key << "\n" << m.body;
        EXPECT_EQ(v[key], want) << key;
    };
    at_least(R"(ragd_http_requests_total{route="/health",status="200"})", 1);
    at_least(R"(ragd_http_requests_total{route="/v1/search",status="400"})", 1);
    at_least(R"(ragd_http_requests_total{route="/v1/ask",status="200"})", 1);  // the stream
    at_least(R"(ragd_http_requests_total{route="/v1/documents",status="202"})", 1);
    at_least(R"(ragd_http_requests_total{route="transport",status="413"})", 1);
    at_least("ragd_documents", 1);
    at_least("ragd_chunks", 1);
    exactly("ragd_ingest_queue_depth", 0);
    exactly("ragd_ingest_jobs_failed", 0);
    exactly("ragd_tokens_generated_total", 0);
    exactly("ragd_model_loaded", 0);
    at_least("ragd_http_connections", 1);       // this request's own
    at_least("ragd_http_requests_running", 1);  // this request
    exactly("ragd_http_requests_queued", 0);
    // Histograms: cumulative buckets ending at +Inf == count.
    for (const char* route : {"/health", "/v1/ask", "/v1/search"}) {
        std::string label = std::string("{route=\"") + route + "\"";
        double prev = 0;
        for (const char* le : {"0.001", "0.01", "0.1", "1", "10", "+Inf"}) {
            std::string key =
                "ragd_http_request_duration_seconds_bucket" + label + ",le=\"" + le + "\"}";
            ASSERT_TRUE(v.count(key)) << key;
            EXPECT_GE(v[key], prev) << key;
            prev = v[key];
        }
        EXPECT_EQ(prev, v["ragd_http_request_duration_seconds_count" + label + "}"]) << route;
    }
}

TEST_F(Serve, MultipartUploadsOneOrSeveralFiles) {
    // One file; quoted boundary; a path in the filename keeps only its base name.
    std::string one =
        multipart_body("----ragd boundary 1",
                       {{"../../etc/mp-kestrelfen.txt", "The kestrelfen levy is due in May.\n"}});
    Resp up = call(port(), "POST", "/v1/documents?collection=birds", one, kKey,
                   {"Content-Type: multipart/form-data; boundary=\"----ragd boundary 1\""});
    ASSERT_EQ(up.status, 202) << up.body;
    json r = up.j();
    EXPECT_EQ(fs::path(r["path"].get<std::string>()).filename(), "mp-kestrelfen.txt");
    EXPECT_NE(r["path"].get<std::string>().find("/uploads/"), std::string::npos);
    ASSERT_EQ(r["files"].size(), 1u);
    EXPECT_EQ(r["files"][0]["filename"], "mp-kestrelfen.txt");
    json job = wait_for_job(port(), r["job_id"].get<int64_t>());
    ASSERT_EQ(job["state"], "done") << job.dump();
    Resp hits = call(port(), "POST", "/v1/search", R"({"query": "kestrelfen", "mode": "keyword"})");
    ASSERT_EQ(hits.j().size(), 1u) << hits.body;
    EXPECT_EQ(hits.j()[0]["document"], "mp-kestrelfen.txt");
    EXPECT_EQ(hits.j()[0]["collection"], "birds");

    // Several files; unquoted boundary; a preamble; the collection as a form field; an
    // RFC 5987 filename*; Content-Type parameters in another order.
    std::string body =
        "preamble to ignore\r\n" +
        multipart_body("XyZ",
                       {{"mp-ospreyholm.md", "# Osprey\n\nThe ospreyholm toll is two crowns.\n"},
                        {"C:\\Users\\me\\mp-grebewick.txt", "The grebewick ferry runs hourly.\n"}},
                       {{"collection", "coast"}});
    body.insert(body.find("--XyZ--"),
                "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"; "
                "filename*=UTF-8''mp-na%C3%AFve-teal.txt\r\n\r\nThe tealbrook naive tariff.\r\n");
    up = call(port(), "POST", "/v1/documents", body, kKey,
              {"Content-Type: multipart/form-data; charset=utf-8; boundary=XyZ"});
    ASSERT_EQ(up.status, 202) << up.body;
    r = up.j();
    ASSERT_EQ(r["files"].size(), 3u) << up.body;
    std::vector<std::string> names;
    for (const json& f : r["files"]) {
        names.push_back(f["filename"]);
        EXPECT_EQ(wait_for_job(port(), f["job_id"].get<int64_t>())["state"], "done");
    }
    EXPECT_EQ(names, (std::vector<std::string>{"mp-ospreyholm.md", "mp-grebewick.txt",
                                               "mp-na\xC3\xAFve-teal.txt"}));
    for (const char* term : {"ospreyholm", "grebewick", "tealbrook"}) {
        Resp h =
            call(port(), "POST", "/v1/search", json({{"query", term}, {"mode", "keyword"}}).dump());
        ASSERT_EQ(h.j().size(), 1u) << term;
        EXPECT_EQ(h.j()[0]["collection"], "coast") << term;
    }
}

TEST_F(Serve, MultipartMistakesAre400AndStoreNothing) {
    const std::string ct = "Content-Type: multipart/form-data; boundary=B";
    auto post = [&](const std::string& body, const std::string& content_type) {
        return call(port(), "POST", "/v1/documents", body, kKey, {content_type});
    };
    std::string good = multipart_body("B", {{"mp-never-a.txt", "never stored\n"}});
    const std::vector<std::tuple<std::string, std::string, std::string>> bad = {
        {good, "Content-Type: multipart/form-data", "no boundary parameter"},
        {good, "Content-Type: multipart/form-data; boundary=", "empty boundary"},
        {good, "Content-Type: multipart/form-data; boundary=\"B", "unterminated quoted boundary"},
        {good, "Content-Type: multipart/form-data; boundary=" + std::string(71, 'b'),
         "boundary over 70"},
        {good.substr(0, good.size() - 9), ct, "truncated: no closing boundary"},
        {good.substr(0, 60), ct, "truncated in the part header"},
        {"", ct, "empty body"},
        {"hello", ct, "no boundary in the body"},
        {"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n", ct,
         "header never ends"},
        {"--Bjunk\r\n\r\nx\r\n--B--\r\n", ct, "junk after the boundary"},
        {"--B\r\nno colon here\r\n\r\nx\r\n--B--\r\n", ct, "header line without a colon"},
        {"--B--\r\n", ct, "no parts"},
        {multipart_body("B", {}, {{"collection", "x"}}), ct, "no file part"},
        {multipart_body("B", {{"mp-never-b.txt", ""}}), ct, "empty file"},
        {multipart_body("B", {{"mp-never-c.txt", "some text\n"}, {"mp-never-d.txt", ""}}), ct,
         "second file empty"},
        {multipart_body("B", {{"..", "x\n"}}), ct, "filename .."},
        {multipart_body("B", {{"", "x\n"}}), ct, "empty filename"},
        {multipart_body("B", {{"a\xFF.txt", "x\n"}}), ct, "filename not UTF-8"},
        {multipart_body("B", {{"mp-never-e.txt", "x\n"}}, {{"collection", "\xFF"}}), ct,
         "collection not UTF-8"},
    };
    for (const auto& [body, content_type, what] : bad) {
        Resp r = post(body, content_type);
        expect_error(r, 400, what);
    }
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(*dir_ / "data", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        EXPECT_EQ(it->path().filename().string().find("mp-never"), std::string::npos) << it->path();
    // Nothing left behind in the spool folder either.
    for (const auto& e : fs::directory_iterator(*dir_ / "data/uploads/.incoming", ec))
        ADD_FAILURE() << "left in the spool: " << e.path();
}

TEST_F(Serve, UploadsHaveTheirOwnSizeLimit) {
    // 1.5 MiB: over max_body_bytes (1 MiB) for JSON, under max_upload_bytes (2 MiB).
    std::string big(3 << 19, 'a');
    for (size_t i = 0; i < big.size(); i += 64) big[i] = '\n';
    expect_error(call(port(), "POST", "/v1/search", big), 413, "1.5 MiB JSON");
    Resp ok = call(port(), "POST", "/v1/documents?filename=big-ok.txt", big);
    EXPECT_EQ(ok.status, 202) << ok.body;
    std::string form = multipart_body("B", {{"big-ok-2.txt", big}});
    ok = call(port(), "POST", "/v1/documents", form, kKey,
              {"Content-Type: multipart/form-data; boundary=B"});
    EXPECT_EQ(ok.status, 202) << ok.body;
    // Over 2 MiB: 413 from the header, raw or multipart, before the body is read.
    std::string huge(2 << 20 | 1, 'a');
    expect_error(call(port(), "POST", "/v1/documents?filename=huge.txt", huge), 413, "raw upload");
    for (std::string target : {"/v1/documents?filename=huge.txt", "/v1/documents"}) {
        int fd = connect_to(port(), 5);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(send_all(fd, "POST " + target +
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     "Authorization: Bearer " +
                                     kKey +
                                     "\r\n"
                                     "Content-Type: multipart/form-data; boundary=B\r\n"
                                     "Content-Length: 1073741824\r\n\r\n--B\r\n"));
        expect_error(read_response(fd), 413, "1 GiB announced to " + target);
        close(fd);
    }
    // Chunked uploads are cut off once they pass the limit.
    int fd = connect_to(port(), 5);
    ASSERT_GE(fd, 0);
    send_all(fd,
             "POST /v1/documents?filename=chunked.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer " +
                 kKey + "\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk(256 << 10, 'c');
    for (int i = 0; i < 12; ++i)
        if (!send_all(fd, "40000\r\n" + chunk + "\r\n")) break;
    expect_error(read_response(fd), 413, "chunked upload over the limit");
    close(fd);
}

TEST_F(Serve, KeepAliveServesSeveralRequestsOnOneConnection) {
    int fd = connect_to(port());
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(send_all(fd, request_text(port(), "GET", "/health", "", "")));
        EXPECT_EQ(read_response(fd).status, 200) << i;
    }
    close(fd);
}

TEST_F(Serve, BodyOverTheLimitIsRefusedBeforeItIsRead) {
    int fd = connect_to(port(), 5);
    ASSERT_GE(fd, 0);
    auto t0 = Clock::now();
    // 1 GiB announced, not one byte of it sent: the answer must come from the header.
    ASSERT_TRUE(send_all(fd,
                         "POST /v1/documents?filename=big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer " +
                             kKey + "\r\nContent-Length: 1073741824\r\n\r\n"));
    Resp r = read_response(fd);
    close(fd);
    expect_error(r, 413, "1 GiB Content-Length");
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));

    // Chunked: refused once the running total passes the limit.
    fd = connect_to(port(), 5);
    ASSERT_GE(fd, 0);
    send_all(fd, "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk(256 << 10, 'a');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
    for (int i = 0; i < 8; ++i)
        if (!send_all(fd, size_line + chunk + "\r\n")) break;
    r = read_response(fd);
    close(fd);
    expect_error(r, 413, "chunked over the limit");

    // A bad Content-Length is a bad request.
    expect_error(
        raw(port(), "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"),
        400, "Content-Length abc");
    EXPECT_EQ(call(port(), "GET", "/health").status, 200);
}

TEST_F(Serve, HugeHeadersGet431) {
    int fd = connect_to(port(), 5);
    ASSERT_GE(fd, 0);
    std::string req =
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(1 << 20, 'a') +
        "\r\n\r\n";
    send_all(fd, req);  // may fail part-way once the server has answered and closed
    Resp r = read_response(fd);
    close(fd);
    expect_error(r, 431, "1 MiB header");
    EXPECT_EQ(call(port(), "GET", "/health").status, 200);
}

TEST_F(Serve, SlowClientsTimeOut) {
    // One byte, then silence: 408 after the 1 s read timeout, then the connection closes.
    int fd = connect_to(port(), 5);
    ASSERT_GE(fd, 0);
    auto t0 = Clock::now();
    ASSERT_TRUE(send_all(fd, "G"));
    Resp r = read_response(fd);
    expect_error(r, 408, "one byte then silence");
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(4));
    EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    // A byte every 300 ms does not extend the deadline (the header must arrive in 1 s).
    fd = connect_to(port(), 5);
    t0 = Clock::now();
    std::string slow = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    bool refused = false;
    for (char c : slow) {
        if (!send_all(fd, std::string(1, c))) {
            refused = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            refused = true;
            break;
        }
        if (Clock::now() - t0 > std::chrono::seconds(5)) break;
    }
    EXPECT_TRUE(refused);
    EXPECT_EQ(read_response(fd).status, 408);
    close(fd);

    // A body shorter than its Content-Length: 408, not a hang.
    fd = connect_to(port(), 5);
    send_all(fd, "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
                     "\r\nContent-Length: 100\r\n\r\n{\"query\"");
    expect_error(read_response(fd), 408, "short body");
    close(fd);

    // An idle connection is closed without a response.
    fd = connect_to(port(), 5);
    EXPECT_TRUE(closed_by_peer(fd));
    close(fd);
}

// ---- servers of their own ----

TEST(ServeProcess, SigtermStopsCleanlyWithExitZero) {
    TempDir dir;
    Server server(dir / "data", {"--api-key", kKey});
    ASSERT_GT(server.port(), 0);
    EXPECT_EQ(call(server.port(), "GET", "/health").status, 200);
    // The data directory is locked while serving.
    test::RunResult second = test::run_ragd({"serve", "--data", dir / "data", "--port", "0"});
    EXPECT_NE(second.exit_code, 0);
    EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
    // An idle keep-alive connection does not hold the shutdown up.
    int idle = connect_to(server.port());
    EXPECT_EQ(server.terminate(), 0) << server.stderr_text();
    close(idle);
}

TEST(ServeProcess, ConnectionsBeyondTheCapGet503ThenServiceRecovers) {
    TempDir dir;
    write_file(dir / "cfg.json", R"({"max_connections": 2, "read_timeout_s": 5})");
    Server server(dir / "data", {"--config", dir / "cfg.json"});
    ASSERT_GT(server.port(), 0);
    int a = connect_to(server.port()), b = connect_to(server.port());
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    // Make sure both are accepted before the third arrives.
    send_all(a, request_text(server.port(), "GET", "/health", "", ""));
    EXPECT_EQ(read_response(a).status, 200);
    send_all(b, request_text(server.port(), "GET", "/health", "", ""));
    EXPECT_EQ(read_response(b).status, 200);
    expect_error(call(server.port(), "GET", "/health", "", ""), 503, "third connection");
    close(a);
    close(b);
    Resp ok;
    for (int i = 0; i < 50 && ok.status != 200; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ok = call(server.port(), "GET", "/health", "", "");
    }
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(server.terminate(), 0);
}

TEST(ServeProcess, TheExampleConfigurationIsValid) {
    TempDir dir;
    // Every key of config/ragd.example.json is known and in range (its allowed root may
    // not exist here: a warning, not an error).
    Server server(dir / "data", {"--config", test::source_dir() + "/config/ragd.example.json"});
    ASSERT_GT(server.port(), 0) << server.stderr_text();
    EXPECT_EQ(call(server.port(), "GET", "/health", "", "").status, 200);
    EXPECT_EQ(call(server.port(), "GET", "/v1/models", "", "change-me").status, 200);
    EXPECT_EQ(server.terminate(), 0);
}

TEST(ServeProcess, BadConfigurationIsRefusedWithTheReason) {
    TempDir dir;
    write_file(dir / "unknown.json", R"({"port": 0, "max_bodee": 5})");
    test::RunResult r =
        test::run_ragd({"serve", "--data", dir / "d", "--config", dir / "unknown.json"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("max_bodee"), std::string::npos) << r.err;
    for (const char* bad :
         {R"({"max_upload_bytes": 0})", R"({"handler_threads": 0})", R"({"max_tokens_limit": -5})",
          R"({"max_queued_requests": "many"})", R"({"write_timeout_s": 99999})"}) {
        write_file(dir / "range.json", bad);
        r = test::run_ragd({"serve", "--data", dir / "d", "--config", dir / "range.json"});
        EXPECT_EQ(r.exit_code, 2) << bad;
        std::string key = json::parse(bad).begin().key();
        EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
    }
    write_file(dir / "type.json", R"({"port": "8080"})");
    r = test::run_ragd({"serve", "--data", dir / "d", "--config", dir / "type.json"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("port"), std::string::npos) << r.err;
    r = test::run_ragd({"serve", "--data", dir / "d", "--port", "70000"});
    EXPECT_EQ(r.exit_code, 2);
    r = test::run_ragd({"serve", "--data", dir / "d", "--bogus"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ragd

namespace ragd {
namespace {

TEST(ServeProcess, FilesQueuedByTheCliWhileServingAreIngestedByTheServer) {
    TempDir dir;
    Server server(dir / "data", {});
    ASSERT_GT(server.port(), 0);
    write_file(dir / "memo.txt", "The quarterly audit found no discrepancies in the ledger.\n");
    test::RunResult r = test::run_ragd({"ingest", "--data", dir / "data", dir / "memo.txt"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Queued 1 file"), std::string::npos) << r.out;
    bool found = false;
    for (auto deadline = Clock::now() + std::chrono::seconds(20);
         !found && Clock::now() < deadline;) {
        Resp s = call(server.port(), "POST", "/v1/search", R"({"query": "ledger discrepancies"})");
        found = s.status == 200 && !s.j().empty();
        if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_TRUE(found) << server.stderr_text();
}

}  // namespace
}  // namespace ragd
