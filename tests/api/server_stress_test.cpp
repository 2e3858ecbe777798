// Transport stress tests of `ragd serve` (the gate the issue sets for the HTTP library):
// a 1 GB body, wrong Content-Length, 1 MB of headers, a client trickling bytes, 2,000
// concurrent connections, clients resetting mid-stream, and concurrent ingest + search +
// delete. Each runs its own server with short timeouts and stays within a few seconds;
// none asserts on time, only on outcomes (status codes, survival, no leaked sockets,
// no memory growth the size of the body, no hit on a deleted document).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/server_client.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using namespace test;

// A server of the test's own: API key, 1 s read timeout, 1 MiB JSON bodies, 4 MiB
// uploads, 8 KiB headers, room for 4,096 connections.
struct StressServer {
    explicit StressServer(json extra = json::object()) {
        json cfg = {{"api_key", kKey},
                    {"read_timeout_s", 1},
                    {"write_timeout_s", 2},
                    {"max_body_bytes", 1 << 20},
                    {"max_upload_bytes", 4 << 20},
                    {"max_header_bytes", 8192},
                    {"max_connections", 4096},
                    {"threads", 2},
                    {"handler_threads", 4},
                    {"max_queued_requests", 256},
                    {"workers", 2}};
        cfg.update(extra);
        write_file(dir / "ragd.json", cfg.dump());
        server = std::make_unique<Server>(dir / "data",
                                          std::vector<std::string>{"--config", dir / "ragd.json"});
    }
    int port() const { return server->port(); }
    bool healthy() const { return call(port(), "GET", "/health", "", "").status == 200; }
    // True once the server holds no more sockets than BASELINE (closing connections is
    // asynchronous: poll, with a deadline).
    bool sockets_back_to(int baseline) {
        auto deadline = Clock::now() + std::chrono::seconds(10);
        while (Clock::now() < deadline) {
            if (server->socket_count() <= baseline) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "server holds " << server->socket_count() << " sockets, " << baseline
                      << " before";
        return false;
    }

    TempDir dir;
    std::unique_ptr<Server> server;
};

std::string post_head(const std::string& target, const std::string& extra_headers) {
    return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
           "\r\n" + extra_headers + "\r\n";
}

// Sends up to LIMIT bytes of filler; stops at the first failed send (server closed).
size_t push(int fd, size_t limit) {
    std::string block(1 << 16, 'z');
    size_t sent = 0;
    while (sent < limit && send_all(fd, block)) sent += block.size();
    return sent;
}

TEST(Stress, GigabyteBodyIsRefusedFromItsHeaderWithoutBeingBuffered) {
    StressServer s;
    ASSERT_GT(s.port(), 0);
    long rss_before = s.server->rss_kib();
    for (const std::string& target :
         {std::string("/v1/search"), std::string("/v1/documents?filename=big.txt")}) {
        int fd = connect_to(s.port(), 5);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(send_all(fd, post_head(target, "Content-Length: 1073741824\r\n")));
        send_all(fd, std::string(1 << 20, 'a'));  // a little of the gigabyte
        Resp r = read_response(fd);
        expect_error(r, 413, "1 GiB to " + target);
        // Keep pushing: the server drains a bounded amount, then closes.
        size_t pushed = push(fd, 64u << 20);
        EXPECT_LT(pushed, 64u << 20) << "the server must stop reading";
        close(fd);
    }
    // Chunked: a single chunk announcing 1 GiB is refused from its size line.
    int fd = connect_to(s.port(), 5);
    ASSERT_TRUE(
        send_all(fd, post_head("/v1/documents?filename=big.txt", "Transfer-Encoding: chunked\r\n") +
                         "40000000\r\n"));
    send_all(fd, std::string(1 << 20, 'b'));
    expect_error(read_response(fd), 413, "1 GiB chunk");
    close(fd);
    long rss_after = s.server->rss_kib();
    EXPECT_LT(rss_after - rss_before, 32 * 1024)
        << "RSS grew from " << rss_before << " KiB to " << rss_after << " KiB";
    EXPECT_TRUE(s.healthy());
}

TEST(Stress, WrongContentLengthIsAnErrorNeverAHangOrACrash) {
    StressServer s;
    ASSERT_GT(s.port(), 0);
    // Shorter than the body: the body is cut (malformed JSON -> 400), and the rest is read
    // as the next request (not HTTP -> 400, then the connection closes).
    int fd = connect_to(s.port(), 5);
    ASSERT_TRUE(send_all(fd, post_head("/v1/search", "Content-Length: 5\r\n") +
                                 R"({"query": "pelican"})" + "\r\n\r\n"));
    Resp first = read_response(fd);
    expect_error(first, 400, "Content-Length shorter than the body");
    EXPECT_EQ(first.j()["error"]["code"], "invalid_json");
    expect_error(read_response(fd), 400, "the rest of the body as a request");
    EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    // Longer than the body, then silence: 408 once the read timeout passes.
    fd = connect_to(s.port(), 5);
    ASSERT_TRUE(
        send_all(fd, post_head("/v1/search", "Content-Length: 100\r\n") + R"({"query": "x"})"));
    expect_error(read_response(fd), 408, "Content-Length longer than the body");
    close(fd);

    // Longer than the body, then the client closes its side: nobody to answer; the
    // server closes too.
    fd = connect_to(s.port(), 5);
    ASSERT_TRUE(
        send_all(fd, post_head("/v1/search", "Content-Length: 100\r\n") + R"({"query": "x"})"));
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(read_response(fd).status, 0);
    close(fd);

    // Contradictory or invalid framing headers.
    for (const std::string& h :
         {std::string("Content-Length: 5\r\nContent-Length: 6\r\n"),
          std::string("Content-Length: -1\r\n"), std::string("Content-Length: 1e3\r\n"),
          std::string("Content-Length: 99999999999999999999999\r\n"),
          std::string("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
          std::string("Transfer-Encoding: gzip\r\n")}) {
        Resp r = raw(s.port(), post_head("/v1/search", h) + "{\"q\": 1}");
        EXPECT_TRUE(r.status == 400 || r.status == 413 || r.status == 501)
            << h << " -> " << r.status;
    }
    EXPECT_TRUE(s.healthy());
}

TEST(Stress, AMegabyteOfHeadersGets431) {
    StressServer s;
    ASSERT_GT(s.port(), 0);
    std::string many;
    for (int i = 0; i < 10000; ++i)
        many += "X-H" + std::to_string(i) + ": " + std::string(90, 'h') + "\r\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"one 1 MiB header", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                                 std::string(1 << 20, 'a') + "\r\n\r\n"},
        {"10,000 headers", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + "\r\n"},
        {"1 MiB request line",
         "GET /health?" + std::string(1 << 20, 'q') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
    };
    for (const auto& [what, bytes] : cases) {
        int fd = connect_to(s.port(), 5);
        ASSERT_GE(fd, 0);
        send_all(fd, bytes);  // may fail part-way once the server has answered and closed
        Resp r = read_response(fd);
        close(fd);
        expect_error(r, 431, what);
    }
    EXPECT_TRUE(s.healthy());
}

TEST(Stress, ClientTricklingBytesIsCutOffByTheReadTimeout) {
    StressServer s;  // read_timeout_s = 1
    ASSERT_GT(s.port(), 0);
    // One byte every 1.5 s, in the header and then in a body: the deadline is for the
    // whole header (or body), so each trickler gets 408 and is closed at the first gap.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"header", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
        {"body", post_head("/v1/search", "Content-Length: 40\r\n") +
                     R"({"query": "trickle trickle trickle"})"},
    };
    for (const auto& [what, bytes] : cases) {
        int fd = connect_to(s.port(), 5);
        ASSERT_GE(fd, 0);
        size_t start = what == "body" ? bytes.find("\r\n\r\n") + 4 : 0;
        ASSERT_TRUE(send_all(fd, bytes.substr(0, start)));
        size_t i = start;
        bool answered = false;
        for (int step = 0; step < 6 && !answered; ++step) {  // 6 x 1.5 s at most
            if (i < bytes.size() && !send_all(fd, bytes.substr(i++, 1))) break;
            pollfd p{fd, POLLIN, 0};
            answered = poll(&p, 1, 1500) > 0;  // while this one waits, others are served:
            EXPECT_TRUE(s.healthy()) << what;
        }
        ASSERT_TRUE(answered) << what;
        expect_error(read_response(fd), 408, what);
        EXPECT_TRUE(closed_by_peer(fd)) << what;
        close(fd);
    }
}

// Raises RLIMIT_NOFILE (inherited by servers started afterwards) to at least N.
bool ensure_nofile(rlim_t n) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
    if (rl.rlim_cur >= n) return true;
    if (rl.rlim_max < n) return false;
    rl.rlim_cur = n;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

TEST(Stress, TwoThousandConcurrentConnections) {
    constexpr int kConnections = 2000;
    if (!ensure_nofile(kConnections * 2 + 256))
        GTEST_SKIP() << "RLIMIT_NOFILE cannot be raised to " << kConnections * 2 + 256;
    StressServer s(json{{"read_timeout_s", 15}});  // idle connections stay open while counted
    ASSERT_GT(s.port(), 0);
    int baseline = s.server->socket_count();
    // All connected at once, then one request each (on the pool: /v1/documents, or inline:
    // /health), then all answers read.
    std::vector<int> fds;
    for (int i = 0; i < kConnections; ++i) {
        int fd = connect_to(s.port(), 15);
        ASSERT_GE(fd, 0) << "connection " << i << ": " << strerror(errno);
        fds.push_back(fd);
    }
    for (int i = 0; i < kConnections; ++i)
        ASSERT_TRUE(send_all(
            fds[i], request_text(s.port(), "GET", i % 2 ? "/health" : "/v1/documents", "", kKey)));
    int ok = 0, busy = 0;
    for (int i = 0; i < kConnections; ++i) {
        Resp r = read_response(fds[i]);
        ok += r.status == 200;
        busy += r.status == 503;  // more than handler_threads + max_queued_requests at once
    }
    EXPECT_EQ(ok + busy, kConnections) << "every connection gets an answer";
    EXPECT_GE(ok, kConnections / 2) << "every /health at least";
    // Every connection is still open on both sides (keep-alive): that is 2,000 at once.
    EXPECT_GE(s.server->socket_count(), baseline + kConnections);
    for (int fd : fds) close(fd);
    EXPECT_TRUE(s.sockets_back_to(baseline));
    EXPECT_TRUE(s.healthy());
    Resp docs = call(s.port(), "GET", "/v1/documents");
    EXPECT_EQ(docs.status, 200);
}

TEST(Stress, ClientsResettingMidStreamDoNotHurtTheServer) {
    StressServer s;
    ASSERT_GT(s.port(), 0);
    // Something to answer from, so the streams carry sentences.
    Resp up = call(s.port(), "POST", "/v1/documents?filename=otters.txt",
                   "Otterwick otters eat mussels. Otterwick otters sleep in holts. "
                   "Otterwick otters swim at dawn.\n");
    ASSERT_EQ(up.status, 202) << up.body;
    ASSERT_EQ(wait_for_job(s.port(), up.j()["job_id"].get<int64_t>())["state"], "done");
    int baseline = s.server->socket_count();
    const std::string ask =
        request_text(s.port(), "POST", "/v1/ask",
                     R"({"question": "What do Otterwick otters do?", "stream": true})", kKey);
    std::atomic<int> complete{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                int fd = connect_to(s.port(), 5);
                if (fd < 0) continue;
                send_all(fd, ask);
                switch ((t + i) % 3) {
                    case 0:  // reset before reading anything
                        break;
                    case 1: {  // reset after the first bytes of the stream
                        char buf[64];
                        recv(fd, buf, sizeof buf, 0);
                        break;
                    }
                    default:  // read it all: the stream still completes for others
                        complete += read_response(fd).complete;
                }
                reset_close(fd);
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_GT(complete.load(), 0);
    EXPECT_TRUE(s.server->alive());
    EXPECT_TRUE(s.healthy());
    Resp again = call(s.port(), "POST", "/v1/ask", R"({"question": "otters", "stream": true})");
    EXPECT_TRUE(again.complete);
    EXPECT_NE(again.body.find("data: [DONE]"), std::string::npos);
    EXPECT_TRUE(s.sockets_back_to(baseline));
}

TEST(Stress, ConcurrentIngestSearchDeleteNeverShowsADeletedDocument) {
    StressServer s;
    ASSERT_GT(s.port(), 0);
    constexpr int kDocs = 12;
    auto doc_text = [](const std::string& tag) {
        return "The sharedmarsh register lists the " + tag +
               " heron colony. Sharedmarsh wardens count " + tag + " nests each spring.\n";
    };
    std::vector<int64_t> ids;
    for (int i = 0; i < kDocs; ++i) {
        Resp up =
            call(s.port(), "POST", "/v1/documents?filename=first" + std::to_string(i) + ".txt",
                 doc_text("firsttag" + std::to_string(i)));
        ASSERT_EQ(up.status, 202) << up.body;
        json job = wait_for_job(s.port(), up.j()["job_id"].get<int64_t>());
        ASSERT_EQ(job["state"], "done") << job.dump();
        ids.push_back(job["document_id"].get<int64_t>());
    }
    std::mutex mu;
    std::set<int64_t> deleted;  // ids whose DELETE has returned 200
    std::vector<std::string> violations, errors;
    std::atomic<bool> done{false};
    std::atomic<int> searches{0};
    std::vector<int64_t> new_jobs;

    std::thread deleter([&] {
        for (int64_t id : ids) {
            Resp r = call(s.port(), "DELETE", "/v1/documents/" + std::to_string(id));
            std::lock_guard lock(mu);
            if (r.status != 200) errors.push_back("DELETE " + std::to_string(id) + " -> " + r.body);
            deleted.insert(id);
        }
    });
    std::thread uploader([&] {
        for (int i = 0; i < 8 && !done; ++i) {
            Resp r =
                call(s.port(), "POST", "/v1/documents?filename=second" + std::to_string(i) + ".txt",
                     doc_text("secondtag" + std::to_string(i)));
            std::lock_guard lock(mu);
            if (r.status != 202)
                errors.push_back("upload -> " + r.body);
            else
                new_jobs.push_back(r.j()["job_id"].get<int64_t>());
        }
    });
    std::vector<std::thread> searchers;
    for (int t = 0; t < 3; ++t)
        searchers.emplace_back([&, t] {
            const char* modes[] = {"hybrid", "keyword", "vector"};
            for (int i = 0; !done; ++i) {
                std::set<int64_t> before;  // deleted before this request was sent
                {
                    std::lock_guard lock(mu);
                    before = deleted;
                }
                bool ask = (i % 4) == 3;
                Resp r = ask ? call(s.port(), "POST", "/v1/ask",
                                    R"({"question": "sharedmarsh heron colony nests", "k": 20})")
                             : call(s.port(), "POST", "/v1/search",
                                    json({{"query", "sharedmarsh heron colony"},
                                          {"k", 50},
                                          {"mode", modes[(t + i) % 3]}})
                                        .dump());
                ++searches;
                std::lock_guard lock(mu);
                if (r.status != 200) {
                    errors.push_back("search -> " + std::to_string(r.status) + " " + r.body);
                    continue;
                }
                json hits = ask ? r.j()["citations"] : r.j();
                for (const json& h : hits)
                    if (before.count(h["document_id"].get<int64_t>()))
                        violations.push_back("hit on deleted document " + h.dump());
            }
        });
    deleter.join();
    uploader.join();
    done = true;
    for (auto& t : searchers) t.join();
    EXPECT_TRUE(violations.empty()) << violations.size() << " violations, first: " << violations[0];
    EXPECT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors[0];
    EXPECT_GT(searches.load(), 0);
    // Afterwards: the uploads made during the run are ingested; no deleted one is found.
    for (int64_t job : new_jobs) EXPECT_EQ(wait_for_job(s.port(), job)["state"], "done");
    Resp final_hits = call(s.port(), "POST", "/v1/search",
                           R"({"query": "sharedmarsh heron", "k": 50, "mode": "keyword"})");
    ASSERT_EQ(final_hits.status, 200);
    EXPECT_EQ(final_hits.j().size(), new_jobs.size());
    for (const json& h : final_hits.j())
        EXPECT_EQ(h["document"].get<std::string>().rfind("second", 0), 0u) << h.dump();
}

}  // namespace
}  // namespace ragd
