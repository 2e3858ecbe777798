// The HTTP transport (api/http.h) in-process, with handlers the test controls: the handler
// pool and its limit, /health while every handler thread is blocked, streamed responses
// (chunk framing, no buffering, producers stopped by a client that leaves or stops reading,
// and by shutdown), spooled bodies; and the multipart/form-data parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/http.h"
#include "config/config.h"
#include "tests/api/server_client.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using namespace test;

// A gate handlers wait at until the test opens it.
class Gate {
  public:
    void wait() {
        std::unique_lock lock(mu_);
        ++waiting_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return open_; });
        --waiting_;
    }
    void open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    // Waits (up to 10 s) until N threads wait at the gate; returns whether they do.
    bool await_waiting(int n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return waiting_ >= n; });
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int waiting_ = 0;
    bool open_ = false;
};

// Polls COND every 5 ms for up to 10 s.
template <class Cond>
bool eventually(Cond cond) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

HttpResponse error_maker(int status, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = json({{"error", {{"message", message}, {"type", "t"}, {"code", "c"}}}}).dump();
    return r;
}

HttpOptions options() {
    HttpOptions o;
    o.port = 0;
    o.threads = 1;
    o.handler_threads = 2;
    o.max_queued_requests = 1;
    o.read_timeout_s = 2;
    o.write_timeout_s = 1;
    o.shutdown_grace_s = 2;
    o.policy = [](const HttpRequest& head) {
        RequestPolicy p;
        p.max_body_bytes = 1 << 20;
        p.run_inline = head.path == "/health";
        return p;
    };
    return o;
}

HttpResponse text(const std::string& body) {
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = body;
    return r;
}

std::string get(const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

TEST(HttpTransport, HealthAnswersWhileEveryHandlerThreadIsBlockedAndTheQueueLimitRecovers) {
    Gate gate;
    std::atomic<int> served{0};
    HttpServer server(
        options(),
        [&](const HttpRequest& r) {
            if (r.path == "/slow") gate.wait();
            ++served;
            return text(r.path);
        },
        error_maker);
    server.start();
    // Two requests hold both handler threads, a third waits in the queue (limit 1).
    std::vector<int> slow;
    for (int i = 0; i < 3; ++i) {
        slow.push_back(connect_to(server.port()));
        ASSERT_TRUE(send_all(slow.back(), get("/slow")));
        if (i == 1) {
            ASSERT_TRUE(gate.await_waiting(2));
        }
    }
    ASSERT_TRUE(eventually([&] { return server.stats().queued == 1; }));
    EXPECT_EQ(server.stats().running, 2);
    // A fourth is refused at once, with Retry-After; /health runs inline and answers.
    Resp busy = raw(server.port(), get("/slow"));
    EXPECT_EQ(busy.status, 503) << busy.body;
    EXPECT_EQ(busy.headers["retry-after"], "1");
    Resp health = raw(server.port(), get("/health"));
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "/health");
    // Released, the three finish, and the server takes new work again.
    gate.open();
    for (int fd : slow) {
        Resp r = read_response(fd);
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "/slow");
        close(fd);
    }
    ASSERT_TRUE(
        eventually([&] { return server.stats().running == 0 && server.stats().queued == 0; }));
    EXPECT_EQ(raw(server.port(), get("/slow")).status, 200);
    EXPECT_EQ(served.load(), 5);
    server.stop();
}

TEST(HttpTransport, StreamedBodiesAreChunkedAndSentAsTheyAreWritten) {
    Gate gate;
    HttpServer server(
        options(),
        [&](const HttpRequest& req) {
            if (req.path == "/health") return text("ok");
            HttpResponse r;
            r.content_type = "text/event-stream";
            r.headers.push_back({"X-Test", "1"});
            r.stream = [&](BodyWriter& w) {
                EXPECT_TRUE(w.write("data: one\n\n"));
                EXPECT_TRUE(w.write(""));  // sends nothing (an empty chunk would end the body)
                gate.wait();
                EXPECT_TRUE(w.write("data: two\n\n"));
            };
            return r;
        },
        error_maker);
    server.start();
    int fd = connect_to(server.port(), 5);
    ASSERT_TRUE(send_all(fd, get("/s")));
    // The header and the first chunk arrive while the producer is still blocked.
    std::string got;
    char buf[4096];
    while (got.find("data: one\n\n\r\n") == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << got;
        got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("X-Test: 1\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("\r\n\r\nb\r\ndata: one\n\n\r\n"), std::string::npos) << got;
    gate.open();
    while (got.find("0\r\n\r\n", got.find("data: two")) == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << got;
        got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(got.ends_with("b\r\ndata: two\n\n\r\n0\r\n\r\n")) << got;
    // Keep-alive: the connection serves the next request.
    ASSERT_TRUE(send_all(fd, get("/health")));
    EXPECT_EQ(read_response(fd).status, 200);
    close(fd);
    server.stop();
}

// A producer that writes (or, between writes, polls cancelled()) until told to stop;
// reports how it ended.
struct Endless {
    std::atomic<bool> started{false}, returned{false}, saw_false{false};
    bool poll_only = false;  // after the first write, only poll cancelled() (a model thinking)
    void run(BodyWriter& w) {
        started = true;
        std::string piece(1024, 'x');
        bool first = true;
        auto deadline = Clock::now() + std::chrono::seconds(20);  // never hang the test
        while (Clock::now() < deadline) {
            if (poll_only && !first) {
                if (w.cancelled()) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            first = false;
            if (!w.write(piece)) {
                saw_false = true;
                break;
            }
        }
        EXPECT_TRUE(w.cancelled());
        EXPECT_FALSE(w.write("late"));
        returned = true;
    }
};

HttpServer endless_server(Endless& e, HttpOptions o = options()) {
    return HttpServer(
        o,
        [&](const HttpRequest&) {
            HttpResponse r;
            r.stream = [&](BodyWriter& w) { e.run(w); };
            return r;
        },
        error_maker);
}

TEST(HttpTransport, ClientThatClosesOrResetsStopsTheProducer) {
    for (bool reset : {false, true}) {
        for (bool poll_only : {false, true}) {
            SCOPED_TRACE(std::string(reset ? "RST" : "FIN") +
                         (poll_only ? ", polling" : ", writing"));
            Endless e;
            e.poll_only = poll_only;
            HttpServer server = endless_server(e);
            server.start();
            int fd = connect_to(server.port(), 5);
            ASSERT_TRUE(send_all(fd, get("/s")));
            char buf[4096];
            ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);                 // the header is sent
            ASSERT_TRUE(eventually([&] { return e.started.load(); }));  // the producer runs
            if (reset)
                reset_close(fd);
            else
                close(fd);
            EXPECT_TRUE(eventually([&] { return e.returned.load(); }));
            EXPECT_TRUE(eventually([&] { return server.stats().connections == 0; }));
            server.stop();
        }
    }
}

TEST(HttpTransport, ClientThatStopsReadingIsDroppedAfterTheWriteTimeout) {
    Endless e;
    HttpServer server = endless_server(e);  // write_timeout_s = 1
    server.start();
    int fd = connect_to(server.port(), 5);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ASSERT_TRUE(send_all(fd, get("/s")));
    // Never reads: the socket buffers fill, a write blocks, the deadline cuts it.
    EXPECT_TRUE(eventually([&] { return e.returned.load(); }));
    EXPECT_TRUE(e.saw_false.load());
    EXPECT_TRUE(eventually([&] { return server.stats().connections == 0; }));
    close(fd);
    server.stop();
}

TEST(HttpTransport, StopCancelsStreamsInFlight) {
    Endless e;
    HttpServer server = endless_server(e);
    server.start();
    int fd = connect_to(server.port(), 5);
    ASSERT_TRUE(send_all(fd, get("/s")));
    ASSERT_TRUE(eventually([&] { return e.started.load(); }));
    // The client keeps reading, so only the shutdown can end the stream.
    std::atomic<bool> reading{true};
    std::thread reader([&] {
        char buf[65536];
        while (reading && recv(fd, buf, sizeof buf, 0) > 0) {
        }
    });
    server.stop();
    EXPECT_TRUE(e.returned.load());
    Resp after = raw(server.port(), get("/health"));
    EXPECT_EQ(after.status, 0) << "stopped: nothing answers";
    reading = false;
    shutdown(fd, SHUT_RDWR);
    reader.join();
    close(fd);
}

TEST(HttpTransport, SpooledBodiesGoToAFileThatIsRemovedAfterTheHandler) {
    TempDir dir;
    HttpOptions o = options();
    o.spool_dir = dir / "spool";
    o.policy = [](const HttpRequest& head) {
        RequestPolicy p;
        p.max_body_bytes = 1 << 16;
        p.spool_body = head.path != "/mem";
        return p;
    };
    fs::create_directories(o.spool_dir);
    write_file(o.spool_dir + "/body-99.part", "left by a crash");
    write_file(o.spool_dir + "/keep.txt", "not the transport's");
    std::mutex mu;
    std::vector<std::string> files;
    HttpServer server(
        o,
        [&](const HttpRequest& r) {
            EXPECT_TRUE(r.body_file.empty() || r.body.empty());
            std::string content = r.body_file.empty() ? r.body : read_file(r.body_file);
            if (!r.body_file.empty()) {
                std::lock_guard lock(mu);
                files.push_back(r.body_file);
                if (r.path == "/keep") fs::rename(r.body_file, o.spool_dir + "/kept.bin");
            }
            return text(r.path + ":" + content);
        },
        error_maker);
    server.start();
    EXPECT_FALSE(fs::exists(o.spool_dir + "/body-99.part")) << "stale spool files are removed";
    EXPECT_TRUE(fs::exists(o.spool_dir + "/keep.txt"));

    std::string body(50000, 'q');
    auto post = [&](const std::string& path, const std::string& b) {
        return raw(server.port(), "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                      std::to_string(b.size()) + "\r\n\r\n" + b);
    };
    EXPECT_EQ(post("/up", body).body, "/up:" + body);
    EXPECT_EQ(post("/mem", "inline").body, "/mem:inline");
    EXPECT_EQ(post("/keep", "kept").body, "/keep:kept");
    EXPECT_EQ(post("/up", "").body, "/up:") << "no body, no file";
    expect_error(post("/up", std::string(70000, 'z')), 413, "over the policy's limit");
    // Chunked, cut off midway by the client: the partial file goes too.
    int fd = connect_to(server.port(), 5);
    send_all(fd, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" +
                     std::string(4096, 'p') + "\r\n");
    ASSERT_TRUE(eventually([&] {
        for (const auto& e : fs::directory_iterator(o.spool_dir))
            if (e.path().filename().string().rfind("body-", 0) == 0) return true;
        return false;
    }));
    reset_close(fd);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_TRUE(eventually([&] {
        std::vector<std::string> left;
        for (const auto& e : fs::directory_iterator(o.spool_dir))
            left.push_back(e.path().filename());
        std::sort(left.begin(), left.end());
        return left == std::vector<std::string>{"keep.txt", "kept.bin"};
    }));
    EXPECT_EQ(read_file(o.spool_dir + "/kept.bin"), "kept");
    server.stop();
}

TEST(HttpTransport, HandlerAndPolicyExceptionsAre500) {
    HttpOptions o = options();
    o.policy = [](const HttpRequest& head) {
        if (head.path == "/policy") throw std::runtime_error("policy broke");
        return RequestPolicy{};
    };
    HttpServer server(
        o,
        [](const HttpRequest& r) -> HttpResponse {
            if (r.path == "/throw") throw std::runtime_error("handler broke");
            if (r.path == "/stream-throw") {
                HttpResponse resp;
                resp.stream = [](BodyWriter& w) {
                    w.write("partial");
                    throw std::runtime_error("producer broke");
                };
                return resp;
            }
            return text("ok");
        },
        error_maker);
    server.start();
    expect_error(raw(server.port(), get("/throw")), 500, "handler");
    expect_error(raw(server.port(), get("/policy")), 500, "policy");
    Resp cut = raw(server.port(), get("/stream-throw"));
    EXPECT_EQ(cut.status, 200);
    EXPECT_FALSE(cut.complete) << "a failed stream must not look complete";
    EXPECT_EQ(raw(server.port(), get("/fine")).body, "ok");
    server.stop();
}

// ---- multipart/form-data ----

TEST(Multipart, BoundaryFromContentType) {
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
    EXPECT_EQ(multipart_boundary("Multipart/Form-Data;BOUNDARY=abc"), "abc");
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"a b;c\""), "a b;c");
    EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; boundary=x1 ; y=z"), "x1");
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"q\\\"x\""), "q\"x");
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'b')),
              std::string(70, 'b'));
    for (const std::string& bad :
         {std::string("multipart/form-data"), std::string("multipart/form-data; boundary="),
          std::string("multipart/form-data; boundary=\"\""),
          std::string("multipart/mixed; boundary=a"), std::string("text/plain; boundary=a"),
          std::string("multipart/form-data; boundary=\"open"),
          "multipart/form-data; boundary=" + std::string(71, 'b'),
          std::string("multipart/form-data; boundary=\"ends in space \""),
          std::string("multipart/form-data; boundary=\"a\x01\"")})
        EXPECT_EQ(multipart_boundary(bad), "") << bad;
}

TEST(Multipart, PartsNamesAndData) {
    std::string body =
        "preamble\r\n--XX\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"quoted\\\".txt\"\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "line one\r\n--XX not a boundary line? no: inside data\r\nline two\r\n"
        "--XX  \t\r\n"
        "content-disposition: form-data; name=collection\r\n\r\n"
        "legal\r\n"
        "--XX\r\n"
        "Content-Disposition: form-data; name=\"f2\"; filename*=UTF-8''caf%C3%A9.md; "
        "filename=\"cafe.md\"\r\n\r\n"
        "\r\n"
        "--XX\r\n\r\nno headers\r\n"
        "--XX--\r\nepilogue --XX\r\n";
    // "--XX not a boundary..." starts with the delimiter: RFC 2046 forbids that in data,
    // so it is read as a (malformed) delimiter line.
    EXPECT_THROW(parse_multipart(body, "XX"), Error);
    size_t bogus = body.find("\r\n--XX not");
    body.replace(bogus, std::string("\r\n--XX not a boundary line? no: inside data").size(),
                 "\r\n-- XX inside data");
    std::vector<MultipartPart> parts = parse_multipart(body, "XX");
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(parts[0].name, "file");
    EXPECT_TRUE(parts[0].is_file);
    EXPECT_EQ(parts[0].filename, "a \"quoted\".txt");
    EXPECT_EQ(parts[0].content_type, "text/plain");
    EXPECT_EQ(parts[0].data, "line one\r\n-- XX inside data\r\nline two");
    EXPECT_EQ(parts[1].name, "collection");
    EXPECT_FALSE(parts[1].is_file);
    EXPECT_EQ(parts[1].data, "legal");
    EXPECT_EQ(parts[2].filename, "caf\xC3\xA9.md");
    EXPECT_TRUE(parts[2].is_file);
    EXPECT_EQ(parts[2].data, "");
    EXPECT_EQ(parts[3].name, "");
    EXPECT_EQ(parts[3].data, "no headers");
    // Binary data, CR and LF included, comes back byte for byte.
    std::string bin;
    for (int i = 0; i < 256; ++i) bin += static_cast<char>(i);
    bin += "\r\n--X\r\n";  // the boundary is XY: a prefix of it is data
    std::string b2 = "--XY\r\nContent-Disposition: form-data; name=\"b\"; filename=\"b\"\r\n\r\n" +
                     bin + "\r\n--XY--";
    parts = parse_multipart(b2, "XY");
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].data, bin);
}

TEST(Multipart, MalformedBodiesThrow) {
    const std::string ok =
        "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B--\r\n";
    EXPECT_EQ(parse_multipart(ok, "B").size(), 1u);
    for (size_t cut = 0; cut + 2 < ok.size(); ++cut)  // every truncation but the final CRLF
        EXPECT_THROW(parse_multipart(ok.substr(0, cut), "B"), Error) << cut;
    for (const std::string& bad : {
             std::string(""),
             std::string("no delimiter at all"),
             std::string("--B"),
             std::string("--Bx\r\n\r\nx\r\n--B--"),
             std::string("--B\r\nno colon\r\n\r\nx\r\n--B--"),
             std::string("--B\r\n: empty name\r\n\r\nx\r\n--B--"),
             std::string(
                 "--B\r\nContent-Disposition: form-data; filename=\"open\r\n\r\nx\r\n--B--"),
             std::string("--B\r\n\r\nx\r\n--C--"),
         })
        EXPECT_THROW(parse_multipart(bad, "B"), Error) << bad;
    EXPECT_THROW(parse_multipart(ok, ""), Error);
}

}  // namespace
}  // namespace ragd
