// Helpers of the `ragd serve` tests: the real binary on a loopback port, spoken to over
// plain POSIX sockets, so every byte on the wire is the test's choice (limits, slow
// clients, malformed requests, resets).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil.h"

namespace ragd::test {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline const std::string kKey = "test-key-0123456789";

// ---- a running `ragd serve` ----

class Server {
  public:
    // Starts `ragd serve --data DATA --port 0 EXTRA...`, stderr to a file; waits for the
    // "listening" line and takes the port from it.
    Server(const std::string& data, const std::vector<std::string>& extra) {
        err_path_ = data + ".stderr";
        std::vector<std::string> args = {ragd_binary(), "serve", "--data", data, "--port", "0"};
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
    int pid() const { return pid_; }
    bool alive() const { return pid_ > 0 && kill(pid_, 0) == 0; }
    std::string stderr_text() const {
        std::error_code ec;
        return std::filesystem::exists(err_path_, ec) ? read_file(err_path_) : "";
    }
    // Open sockets of the server process (the listener and its connections; database and
    // index files, which legitimately grow with use, are not counted).
    int socket_count() const {
        std::error_code ec;
        int n = 0;
        for (auto it =
                 std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec);
             !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
            std::error_code lec;
            n += std::filesystem::read_symlink(it->path(), lec).string().rfind("socket:", 0) == 0;
        }
        return n;
    }
    // Resident memory of the server process, in KiB.
    long rss_kib() const {
        std::string status = read_file("/proc/" + std::to_string(pid_) + "/status");
        size_t p = status.find("VmRSS:");
        return p == std::string::npos ? -1 : std::atol(status.c_str() + p + 6);
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
    std::string body;                            // de-chunked
    std::vector<std::string> chunks;             // the chunks, for a chunked body
    bool complete = false;  // framing complete (Content-Length reached / last chunk seen)
    json j() const { return json::parse(body); }
};

inline int connect_to(int port, int recv_timeout_s = 15) {
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

// Closes FD with a reset (RST) instead of an orderly FIN.
inline void reset_close(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

inline bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Reads one response: Content-Length framed, chunked, or to EOF. Reads exactly the bytes
// of this response, so a pipelined next response stays in the socket.
inline Resp read_response(int fd) {
    Resp r;
    // One line (without its CRLF); false on EOF or error.
    auto line = [&](std::string* out) {
        out->clear();
        char c;
        while (recv(fd, &c, 1, 0) == 1) {
            if (c == '\n' && !out->empty() && out->back() == '\r') {
                out->pop_back();
                return true;
            }
            *out += c;
        }
        return false;
    };
    auto exact = [&](size_t n, std::string* out) {
        char tmp[65536];
        while (n > 0) {
            ssize_t got = recv(fd, tmp, std::min(n, sizeof tmp), 0);
            if (got <= 0) return false;
            out->append(tmp, static_cast<size_t>(got));
            n -= static_cast<size_t>(got);
        }
        return true;
    };
    std::string l;
    if (!line(&l) || l.size() < 12) return r;
    r.status = std::atoi(l.c_str() + 9);
    while (line(&l) && !l.empty()) {
        if (size_t colon = l.find(':'); colon != std::string::npos) {
            std::string name = l.substr(0, colon);
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            size_t v = l.find_first_not_of(' ', colon + 1);
            r.headers[name] = v == std::string::npos ? "" : l.substr(v);
        }
    }
    if (auto te = r.headers.find("transfer-encoding");
        te != r.headers.end() && te->second == "chunked") {
        for (;;) {
            if (!line(&l)) return r;
            size_t size = std::stoul(l, nullptr, 16);
            std::string chunk;
            if (!exact(size + 2, &chunk)) return r;
            if (size == 0) {
                r.complete = true;
                return r;
            }
            chunk.resize(size);
            r.chunks.push_back(chunk);
            r.body += chunk;
        }
    }
    if (auto cl = r.headers.find("content-length"); cl != r.headers.end()) {
        r.complete = exact(std::stoul(cl->second), &r.body);
        return r;
    }
    char tmp[65536];
    for (ssize_t n; (n = recv(fd, tmp, sizeof tmp, 0)) > 0;)
        r.body.append(tmp, static_cast<size_t>(n));
    return r;
}

// True when the server closed the connection (EOF or reset) within the socket timeout.
inline bool closed_by_peer(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

inline std::string request_text(int port, const std::string& method, const std::string& target,
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

inline Resp raw(int port, const std::string& bytes) {
    int fd = connect_to(port);
    if (fd < 0) return {};
    send_all(fd, bytes);
    Resp r = read_response(fd);
    close(fd);
    return r;
}

inline Resp call(int port, const std::string& method, const std::string& target,
                 const std::string& body = "", const std::string& key = kKey,
                 const std::vector<std::string>& extra = {}) {
    return raw(port, request_text(port, method, target, body, key, extra));
}

// The error shape of every failure: {"error": {"message", "type", "code"}}.
inline void expect_error(const Resp& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << what;
    EXPECT_TRUE(j["error"]["type"].is_string()) << what;
    EXPECT_TRUE(j["error"]["code"].is_string()) << what;
}

// The payloads of the "data: ..." lines of a text/event-stream body, in order. Fails the
// test on a line that is not a data line or an event not ended by a blank line.
inline std::vector<std::string> sse_data(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
        size_t end = body.find("\n\n", pos);
        if (end == std::string::npos) {
            ADD_FAILURE() << "unterminated event: " << body.substr(pos);
            break;
        }
        std::string event = body.substr(pos, end - pos);
        if (event.rfind("data: ", 0) != 0 || event.find('\n') != std::string::npos)
            ADD_FAILURE() << "not one data line: " << event;
        else
            out.push_back(event.substr(6));
        pos = end + 2;
    }
    return out;
}

// Waits until the job is done and searchable; returns its final row.
inline json wait_for_job(int port, int64_t job_id, const std::string& key = kKey) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    json j;
    while (Clock::now() < deadline) {
        Resp r = call(port, "GET", "/v1/jobs/" + std::to_string(job_id), "", key);
        EXPECT_EQ(r.status, 200) << r.body;
        if (r.status != 200) return j;
        j = r.j();
        if (j["state"] == "failed" || j["indexed"] == true) return j;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "job " << job_id << " did not finish: " << j.dump();
    return j;
}

// A multipart/form-data body: files (field name "file") then form fields.
struct FormFile {
    std::string filename;  // the raw Content-Disposition filename parameter
    std::string data;
};
inline std::string multipart_body(
    const std::string& boundary, const std::vector<FormFile>& files,
    const std::vector<std::pair<std::string, std::string>>& fields = {}) {
    std::string b;
    for (const FormFile& f : files)
        b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
             f.filename + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + f.data + "\r\n";
    for (const auto& [name, value] : fields)
        b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
             value + "\r\n";
    return b + "--" + boundary + "--\r\n";
}

}  // namespace ragd::test
