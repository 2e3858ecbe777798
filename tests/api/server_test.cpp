// Integration tests of `ragd serve`: the real binary on a loopback port, spoken to over
// plain POSIX sockets, so every byte on the wire is the test's choice (limits, slow
// clients, malformed requests).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::TempDir;
using test::write_file;
using Clock = std::chrono::steady_clock;

const std::string kKey = "test-key-0123456789";

// ---- a running `ragd serve` ----

class Server {
  public:
    // Starts `ragd serve --data DATA --port 0 EXTRA...`, stderr to a file; waits for the
    // "listening" line and takes the port from it.
    Server(const std::string& data, const std::vector<std::string>& extra) {
        err_path_ = data + ".stderr";
        std::vector<std::string> args = {
            test::ragd_binary(), "serve", "--data", data, "--port", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = fork();
        if (pid_ == 0) {
            FILE* f = std::fopen(err_path_.c_str(), "w");
            if (f) dup2(fileno(f), 2);
            unsetenv("RAGD_DATA");
            unsetenv("RAGD_API_KEY");
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        auto deadline = Clock::now() + std::chrono::seconds(30);
        const std::string marker = "listening on http://127.0.0.1:";
        while (Clock::now() < deadline) {
            std::string err = stderr_text();
            if (size_t p = err.find(marker);
                p != std::string::npos && err.find('\n', p) != std::string::npos) {
                port_ = std::stoi(err.substr(p + marker.size()));
                return;
            }
            int status;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                ADD_FAILURE() << "ragd serve exited early: " << stderr_text();
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "ragd serve did not start: " << stderr_text();
    }
    ~Server() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int port() const { return port_; }
    std::string stderr_text() const {
        std::error_code ec;
        return fs::exists(err_path_, ec) ? test::read_file(err_path_) : "";
    }
    // SIGTERM, then the exit code (-1 if killed by a signal or not stopped in 30 s).
    int terminate() {
        if (pid_ <= 0) return -1;
        kill(pid_, SIGTERM);
        auto deadline = Clock::now() + std::chrono::seconds(30);
        int status = 0;
        while (Clock::now() < deadline) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

  private:
    std::string err_path_;
    int pid_ = -1;
    int port_ = 0;
};

// ---- a tiny blocking HTTP/1.1 client ----

struct Resp {
    int status = 0;                              // 0: no response (connection closed or timed out)
    std::map<std::string, std::string> headers;  // lowercased names
    std::string body;
    json j() const { return json::parse(body); }
};

int connect_to(int port, int recv_timeout_s = 15) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    timeval tv{recv_timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Reads one response (Content-Length framed, or to EOF).
Resp read_response(int fd) {
    Resp r;
    std::string buf;
    char tmp[65536];
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return r;
        buf.append(tmp, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, header_end);
    r.body = buf.substr(header_end + 4);
    if (head.size() > 12) r.status = std::atoi(head.c_str() + 9);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
        size_t next = head.find("\r\n", pos + 2);
        std::string line =
            head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        if (size_t colon = line.find(':'); colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        pos = next;
    }
    if (r.headers.count("content-length")) {
        size_t len = std::stoul(r.headers["content-length"]);
        while (r.body.size() < len) {
            ssize_t n = recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) break;
            r.body.append(tmp, static_cast<size_t>(n));
        }
    } else {
        for (ssize_t n; (n = recv(fd, tmp, sizeof tmp, 0)) > 0;)
            r.body.append(tmp, static_cast<size_t>(n));
    }
    return r;
}

// True when the server closed the connection (EOF or reset) within the socket timeout.
bool closed_by_peer(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

std::string request_text(int port, const std::string& method, const std::string& target,
                         const std::string& body, const std::string& key,
                         const std::vector<std::string>& extra = {}) {
    std::string s =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
    if (!key.empty()) s += "Authorization: Bearer " + key + "\r\n";
    for (const std::string& h : extra) s += h + "\r\n";
    if (!body.empty() || method == "POST")
        s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    s += "\r\n" + body;
    return s;
}

Resp raw(int port, const std::string& bytes) {
    int fd = connect_to(port);
    if (fd < 0) return {};
    send_all(fd, bytes);
    Resp r = read_response(fd);
    close(fd);
    return r;
}

Resp call(int port, const std::string& method, const std::string& target,
          const std::string& body = "", const std::string& key = kKey,
          const std::vector<std::string>& extra = {}) {
    return raw(port, request_text(port, method, target, body, key, extra));
}

// The error shape of every failure: {"error": {"message", "type", "code"}}.
void expect_error(const Resp& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << what;
    EXPECT_TRUE(j["error"]["type"].is_string()) << what;
    EXPECT_TRUE(j["error"]["code"].is_string()) << what;
}

// ---- the shared server: key, 1 s read timeout, 1 MiB bodies, 8 KiB headers ----

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
                    {"max_header_bytes", 8192},
                    {"allowed_roots", {*dir_ / "root"}},
                    {"threads", 4},
                    {"workers", 1},
                    {"max_k", 100},
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

// Waits until the job is done and searchable; returns its final row.
json wait_for_job(int port, int64_t job_id) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    json j;
    while (Clock::now() < deadline) {
        Resp r = call(port, "GET", "/v1/jobs/" + std::to_string(job_id));
        EXPECT_EQ(r.status, 200) << r.body;
        j = r.j();
        if (j["state"] == "failed" || j["indexed"] == true) return j;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "job " << job_id << " did not finish: " << j.dump();
    return j;
}

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

TEST_F(Serve, AskAnswersExtractivelyAndRefusesStreamingForNow) {
    Resp r =
        call(port(), "POST", "/v1/ask", R"({"question": "what does the audit cover?", "k": 3})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.j()["answer"].is_string());
    EXPECT_TRUE(r.j()["citations"].is_array());
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "stream": true})"), 501,
                 "stream");
    expect_error(call(port(), "POST", "/v1/ask", R"({"question": "x", "stream": "yes"})"), 400,
                 "stream type");
    expect_error(call(port(), "POST", "/v1/ask", R"({"query": "x"})"), 400, "no question");
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

TEST_F(Serve, ModelRoutesSayNoModelIsLoaded) {
    for (std::string path : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}) {
        Resp r = call(port(), "POST", path, R"({"model": "x", "messages": []})");
        expect_error(r, 503, path);
        EXPECT_EQ(r.j()["error"]["code"], "model_not_loaded");
    }
    Resp models = call(port(), "GET", "/v1/models");
    ASSERT_EQ(models.status, 200);
    EXPECT_EQ(models.j(), json::parse(R"({"object":"list","data":[]})"));
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
    Resp multipart = call(port(), "POST", "/v1/documents", "--x--", kKey,
                          {"Content-Type: multipart/form-data; boundary=x"});
    expect_error(multipart, 415, "multipart not yet");
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
                 json({{"query", "zanzibarquokka renewals"}, {"k", 100}, {"mode", mode}}).dump());
        ASSERT_EQ(after.status, 200);
        for (const json& h : after.j()) EXPECT_NE(h["document_id"], doc_id) << mode;
    }

    expect_error(call(port(), "POST", "/v1/documents?filename=..", "x"), 400, "filename ..");
    expect_error(call(port(), "POST", "/v1/documents?filename=", "x"), 400, "empty filename");
    expect_error(call(port(), "POST", "/v1/documents?filename=a%FF.txt", "x"), 400,
                 "bad UTF-8 name");
    expect_error(call(port(), "POST", "/v1/documents?filename=empty.txt", ""), 400, "empty file");
}

TEST_F(Serve, MetricsArePrometheusText) {
    call(port(), "GET", "/health");
    call(port(), "POST", "/v1/search", "{");
    Resp m = call(port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.headers["content-type"].find("text/plain"), std::string::npos);
    for (const char* s :
         {"ragd_http_requests_total{route=\"/health\",status=\"200\"}",
          "ragd_http_requests_total{route=\"/v1/search\",status=\"400\"}",
          "ragd_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"}",
          "ragd_http_request_duration_seconds_count", "\nragd_documents ", "\nragd_chunks ",
          "\nragd_ingest_queue_depth "})
        EXPECT_NE(m.body.find(s), std::string::npos) << s << "\n" << m.body;
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

TEST(ServeProcess, BadConfigurationIsRefusedWithTheReason) {
    TempDir dir;
    write_file(dir / "unknown.json", R"({"port": 0, "max_bodee": 5})");
    test::RunResult r =
        test::run_ragd({"serve", "--data", dir / "d", "--config", dir / "unknown.json"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("max_bodee"), std::string::npos) << r.err;
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
