// api/http: Beast sessions, the handler pool, streamed responses, the accept loop,
// graceful shutdown (design in http.h), and the multipart/form-data parser.
#include "api/http.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <variant>

#include "config/config.h"

namespace ragd {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr size_t kDrainLimit = 4u << 20;  // bytes read and dropped after an error response
constexpr int kDrainSeconds = 2;
constexpr const char* kSpoolPrefix = "body-";

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Runs handlers off the I/O threads. Bounded: at most threads + max_queue tasks are
// accepted at once (running or waiting); submit() refuses beyond that.
class HandlerPool {
  public:
    void start(int threads, int max_queue) {
        max_tasks_ = threads + max_queue;
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
    }

    bool submit(std::function<void()> task) {
        {
            std::lock_guard lock(mu_);
            if (stopping_ || running_ + static_cast<int>(queue_.size()) >= max_tasks_) return false;
            queue_.push_back(std::move(task));
        }
        cv_.notify_one();
        return true;
    }

    // Drops the tasks still queued, waits for the running ones.
    void stop() {
        std::deque<std::function<void()>> dropped;
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
            dropped.swap(queue_);
        }
        cv_.notify_all();
        dropped.clear();  // outside the lock: dropping a task may destroy a session
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

    int running() const {
        std::lock_guard lock(mu_);
        return running_;
    }
    int queued() const {
        std::lock_guard lock(mu_);
        return static_cast<int>(queue_.size());
    }

  private:
    void loop() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping
            std::function<void()> task = std::move(queue_.front());
            queue_.pop_front();
            ++running_;
            lock.unlock();
            task();
            task = nullptr;  // release what it holds before taking the lock again
            lock.lock();
            --running_;
        }
    }

    mutable std::mutex mu_;  // guards everything below
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    int running_ = 0;
    int max_tasks_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

std::string url_decode(const std::string& s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

class Session;

struct HttpServer::Impl {
    HttpOptions opts;
    HttpHandler handler;
    HttpErrorMaker make_error;

    // Declared before ioc so that sessions destroyed with the io_context's pending
    // handlers can still unregister themselves.
    std::atomic<bool> stopping{false};
    std::atomic<int> active{0};  // open sessions
    std::mutex mu;               // guards sessions
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
    std::atomic<uint64_t> spool_seq{0};
    HandlerPool pool;

    net::io_context ioc;
    std::optional<tcp::acceptor> acceptor;
    std::optional<net::steady_timer> retry_timer;  // re-arms accept after an accept error
    std::vector<std::thread> threads;
    int bound_port = 0;
    bool started = false;
    bool stopped = false;

    void do_accept();
    void on_accept(error_code ec, tcp::socket socket);
    void reject_busy(tcp::socket& socket);

    HttpResponse error(int status, const std::string& message) {
        try {
            return make_error(status, message);
        } catch (...) {
            HttpResponse r;
            r.status = status;
            r.body = "{}";
            return r;
        }
    }
};

// One connection. Its I/O handlers run on its strand, so the members they touch need no
// locks. A request is handed to a handler thread and comes back to the strand with the
// response: between the two, only that thread touches the request state.
class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket&& socket, HttpServer::Impl& srv)
        : socket_(std::move(socket)), timer_(socket_.get_executor()), srv_(srv) {
        srv_.active.fetch_add(1);
    }
    ~Session() {
        discard_spool();
        {
            std::lock_guard lock(srv_.mu);
            srv_.sessions.erase(this);
        }
        srv_.active.fetch_sub(1);
    }

    void start() {
        net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }

    // Shutdown: a connection waiting for a request that has not begun is closed now; one
    // in the middle of a request finishes it and then closes.
    void close_if_idle() {
        if (reading_header_ && buffer_.size() == 0 && head_ && !head_->got_some()) close();
    }

    auto executor() { return socket_.get_executor(); }

  private:
    class StreamWriter : public BodyWriter {
      public:
        StreamWriter(Session& s, bool chunked) : s_(s), chunked_(chunked) {}

        bool write(std::string_view data) override {
            if (cancelled()) return false;
            if (data.empty()) return true;
            std::string frame;
            if (chunked_) {
                char size_line[24];
                int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
                frame.reserve(static_cast<size_t>(n) + data.size() + 2);
                frame.append(size_line, static_cast<size_t>(n)).append(data).append("\r\n");
            } else {
                frame.assign(data);
            }
            if (!s_.send_and_wait(std::move(frame))) failed_ = true;
            return !failed_;
        }

        bool cancelled() const override {
            return failed_ || s_.peer_gone_.load() || s_.srv_.stopping.load();
        }

        void fail() { failed_ = true; }

      private:
        Session& s_;
        bool chunked_;
        bool failed_ = false;
    };

    // ---- deadlines: the timer cancels the socket's operations; handlers see timed_out_ ----
    void arm(std::chrono::steady_clock::duration d) {
        timed_out_ = false;
        uint64_t gen = ++timer_gen_;
        timer_.expires_after(d);
        timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
            if (ec || gen != self->timer_gen_) return;
            self->timed_out_ = true;
            error_code ignored;
            self->socket_.cancel(ignored);
        });
    }
    void disarm() {
        ++timer_gen_;
        timer_.cancel();
    }

    // ---- reading a request ----

    void read_header() {
        if (srv_.stopping.load()) return close();
        discard_spool();
        body_ = std::monostate{};
        req_ = HttpRequest();
        head_.emplace();
        head_->header_limit(srv_.opts.max_header_bytes);
        // The body limit depends on the route, known once the header is in (on_header).
        head_->body_limit(std::numeric_limits<uint64_t>::max());
        reading_header_ = true;
        arm(std::chrono::seconds(srv_.opts.read_timeout_s));
        bhttp::async_read_header(
            socket_, buffer_, *head_,
            [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(error_code ec) {
        reading_header_ = false;
        if (ec) {
            disarm();
            return read_failed(ec, /*in_header=*/true);
        }
        fill_request();
        try {
            policy_ = srv_.opts.policy ? srv_.opts.policy(req_)
                                       : RequestPolicy{srv_.opts.max_body_bytes, false, false};
        } catch (const std::exception& e) {
            disarm();
            return send_error(500, std::string("internal error: ") + e.what());
        }
        if (uint64_t len = announced_length(); len > policy_.max_body_bytes) {
            disarm();
            return send_error(413, "request body of " + std::to_string(len) +
                                       " bytes is over the limit of " +
                                       std::to_string(policy_.max_body_bytes) + " bytes");
        }
        if (head_->is_done()) {
            disarm();
            return handle();
        }
        // The header is in and the body not begun: move the parser to the body type chosen
        // by the policy (Beast's documented way to pick a body type from the header).
        if (policy_.spool_body) {
            spool_path_ = (fs::path(srv_.opts.spool_dir) /
                           (kSpoolPrefix + std::to_string(srv_.spool_seq.fetch_add(1)) + ".part"))
                              .string();
            auto& p = body_.emplace<FileParser>(std::move(*head_));
            error_code fec;
            p.get().body().open(spool_path_.c_str(), beast::file_mode::write, fec);
            if (fec) {
                disarm();
                spool_path_.clear();
                return send_error(500, "cannot store the request body: " + fec.message());
            }
            p.body_limit(policy_.max_body_bytes);
        } else {
            body_.emplace<StringParser>(std::move(*head_)).body_limit(policy_.max_body_bytes);
        }
        head_.reset();
        // The body deadline grows with the announced size: read_timeout_s + 1 s per MiB.
        uint64_t len = announced_length();
        arm(std::chrono::seconds(srv_.opts.read_timeout_s) +
            std::chrono::seconds(static_cast<int64_t>(len >> 20)));
        if (beast::iequals(req_.header("expect"), "100-continue")) {
            static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            net::async_write(socket_, net::buffer(kContinue),
                             [self = shared_from_this()](error_code ec, size_t) {
                                 if (ec) {
                                     self->disarm();
                                     return self->read_failed(ec, false);
                                 }
                                 self->read_body();
                             });
            return;
        }
        read_body();
    }

    // Content-Length as announced (the parser has validated it), 0 when absent (chunked
    // or no body). Read from the header rather than the parser's boost::optional, which
    // GCC's -Wmaybe-uninitialized misreads in sanitizer builds.
    uint64_t announced_length() const {
        std::string v = req_.header("content-length");
        uint64_t n = 0;
        std::from_chars(v.data(), v.data() + v.size(), n);
        return n;
    }

    void fill_request() {
        const auto& h = head_->get();
        HttpRequest& r = req_;
        r.method = std::string(h.method_string());
        r.target = std::string(h.target());
        std::string raw_path = r.target, query;
        if (size_t q = r.target.find('?'); q != std::string::npos) {
            raw_path = r.target.substr(0, q);
            query = r.target.substr(q + 1);
        }
        r.path = url_decode(raw_path, false);
        size_t pos = 0;
        while (pos < query.size()) {
            size_t amp = query.find('&', pos);
            if (amp == std::string::npos) amp = query.size();
            std::string part = query.substr(pos, amp - pos);
            if (!part.empty()) {
                size_t eq = part.find('=');
                std::string k = url_decode(part.substr(0, eq), true);
                std::string v =
                    eq == std::string::npos ? "" : url_decode(part.substr(eq + 1), true);
                r.query[k] = v;
            }
            pos = amp + 1;
        }
        for (const auto& f : h) {
            std::string& slot = r.headers[lower(std::string(f.name_string()))];
            if (!slot.empty()) slot += ", ";
            slot += std::string(f.value());
        }
        keep_alive_ = h.keep_alive();
        version_ = h.version();
    }

    void read_body() {
        auto done = [self = shared_from_this()](error_code ec, size_t) {
            self->disarm();
            if (ec) return self->read_failed(ec, false);
            self->on_body();
        };
        if (auto* f = std::get_if<FileParser>(&body_))
            bhttp::async_read(socket_, buffer_, *f, std::move(done));
        else
            bhttp::async_read(socket_, buffer_, std::get<StringParser>(body_), std::move(done));
    }

    void on_body() {
        if (auto* f = std::get_if<FileParser>(&body_)) {
            f->get().body().close();
            req_.body_file = spool_path_;
        } else {
            req_.body = std::move(std::get<StringParser>(body_).get().body());
        }
        handle();
    }

    void read_failed(error_code ec, bool in_header) {
        if (timed_out_) {
            // Idle keep-alive connections close silently; a started request gets 408.
            if (in_header && buffer_.size() == 0 && !head_->got_some()) return close();
            return send_error(408, "the request was not received within the read timeout");
        }
        if (ec == bhttp::error::header_limit)
            return send_error(431, "request header is over the limit of " +
                                       std::to_string(srv_.opts.max_header_bytes) + " bytes");
        if (ec == bhttp::error::body_limit)
            return send_error(413, "request body is over the limit of " +
                                       std::to_string(policy_.max_body_bytes) + " bytes");
        if (ec == boost::system::errc::no_space_on_device)
            return send_error(507, "no space left to store the request body");
        // The client went away, or a socket error: nobody to answer.
        if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
            ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category())
            return close();
        return send_error(400, std::string("malformed HTTP request: ") + ec.message());
    }

    // ---- running the handler ----

    void handle() {
        if (policy_.run_inline) {
            HttpResponse resp = call_handler();
            if (resp.stream) resp = srv_.error(500, "an inline handler cannot stream");
            discard_spool();
            return write(std::move(resp), keep_alive_ && !srv_.stopping.load(), false);
        }
        if (srv_.pool.submit([self = shared_from_this()] { self->run_on_pool(); })) return;
        // Every handler thread busy and the queue full: refuse now rather than pile up.
        discard_spool();
        if (srv_.opts.on_transport_error) srv_.opts.on_transport_error(503);
        HttpResponse busy = srv_.error(
            503, "the server is busy (" + std::to_string(srv_.opts.handler_threads) +
                     " requests running, " + std::to_string(srv_.opts.max_queued_requests) +
                     " waiting); retry later");
        busy.headers.push_back({"Retry-After", "1"});
        write(std::move(busy), keep_alive_ && !srv_.stopping.load(), false);
    }

    HttpResponse call_handler() {
        try {
            return srv_.handler(req_);
        } catch (const std::exception& e) {
            return srv_.error(500, std::string("internal error: ") + e.what());
        } catch (...) {
            return srv_.error(500, "internal error");
        }
    }

    // On a handler thread.
    void run_on_pool() {
        HttpResponse resp = call_handler();
        discard_spool();  // the handler is done with the body file (or moved it away)
        if (resp.stream) return stream(std::move(resp));
        net::post(socket_.get_executor(), [self = shared_from_this(),
                                           resp = std::move(resp)]() mutable {
            self->write(std::move(resp), self->keep_alive_ && !self->srv_.stopping.load(), false);
        });
    }

    // ---- writing a whole response ----

    void send_error(int status, const std::string& message) {
        if (srv_.opts.on_transport_error) srv_.opts.on_transport_error(status);
        discard_spool();
        write(srv_.error(status, message), false, /*drain=*/true);
    }

    void write(HttpResponse resp, bool keep_alive, bool drain) {
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
            static_cast<bhttp::status>(resp.status), version_);
        set_common_headers(*res, resp);
        res->body() = std::move(resp.body);
        res->keep_alive(keep_alive);
        res->prepare_payload();
        arm(std::chrono::seconds(srv_.opts.write_timeout_s));
        bhttp::async_write(
            socket_, *res,
            [self = shared_from_this(), res, keep_alive, drain](error_code ec, size_t) {
                self->disarm();
                if (ec) return self->close();
                if (drain) return self->drain();
                if (!keep_alive) return self->close();
                self->read_header();
            });
    }

    template <class Message>
    static void set_common_headers(Message& m, const HttpResponse& resp) {
        m.set(bhttp::field::server, "ragd");
        m.set(bhttp::field::content_type, resp.content_type);
        m.set(bhttp::field::cache_control, "no-store");
        for (auto& [k, v] : resp.headers) m.set(k, v);
    }

    // ---- streaming a response (on a handler thread, except where posted) ----

    // Runs OP on the strand and waits for it to report. OP starts an asynchronous
    // operation and calls its argument once, when that operation completes. The strand
    // always answers: every operation started this way has a write deadline, and stop()
    // joins the handler threads before it stops the I/O threads.
    bool on_strand_and_wait(std::function<void(std::function<void(bool)>)> op) {
        auto done = std::make_shared<std::promise<bool>>();
        std::future<bool> result = done->get_future();
        net::post(socket_.get_executor(),
                  [op = std::move(op), done] { op([done](bool ok) { done->set_value(ok); }); });
        return result.get();
    }

    // Sends BYTES (already framed) and waits until the socket took them.
    bool send_and_wait(std::string bytes) {
        auto buf = std::make_shared<std::string>(std::move(bytes));
        return on_strand_and_wait([self = shared_from_this(), buf](std::function<void(bool)> done) {
            self->arm(std::chrono::seconds(self->srv_.opts.write_timeout_s));
            net::async_write(self->socket_, net::buffer(*buf),
                             [self, buf, done = std::move(done)](error_code ec, size_t) {
                                 self->disarm();
                                 done(!ec);
                             });
        });
    }

    // Notices a client that closes or resets the connection while a stream runs, even
    // between writes: waits for the socket to become readable and peeks. Bytes that are
    // the client's next request (pipelining) stay in the socket for read_header.
    void watch_peer() {
        uint64_t gen = ++watch_gen_;
        watching_ = true;
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](error_code ec) {
            if (gen != self->watch_gen_) return;
            self->watching_ = false;
            if (ec == net::error::operation_aborted) return;
            char c;
            ssize_t n = ::recv(self->socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (!ec && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return self->watch_peer();  // spurious wake-up
            if (ec || n <= 0) {
                self->peer_gone_.store(true);
                error_code ignored;
                self->socket_.cancel(ignored);  // fail a write that is waiting on the client
            }
        });
    }
    void stop_watching() {
        ++watch_gen_;
        if (watching_) {
            watching_ = false;
            error_code ignored;
            socket_.cancel(ignored);
        }
    }

    void stream(HttpResponse resp) {
        BodyProducer producer = std::move(resp.stream);
        const bool chunked = version_ >= 11;  // HTTP/1.0 has no chunks: the body ends at close
        const bool keep_alive = chunked && keep_alive_ && !srv_.stopping.load();
        peer_gone_.store(false);
        auto head = std::make_shared<bhttp::response<bhttp::empty_body>>(
            static_cast<bhttp::status>(resp.status), version_);
        set_common_headers(*head, resp);
        head->keep_alive(keep_alive);
        if (chunked) head->chunked(true);
        bool ok =
            on_strand_and_wait([self = shared_from_this(), head](std::function<void(bool)> done) {
                auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*head);
                self->arm(std::chrono::seconds(self->srv_.opts.write_timeout_s));
                bhttp::async_write_header(
                    self->socket_, *sr,
                    [self, head, sr, done = std::move(done)](error_code ec, size_t) {
                        self->disarm();
                        if (!ec) self->watch_peer();
                        done(!ec);
                    });
            });
        StreamWriter writer(*this, chunked);
        if (!ok) writer.fail();
        if (!writer.cancelled()) {
            try {
                producer(writer);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "ragd: response stream failed: %s\n", e.what());
                writer.fail();
            }
        }
        producer = nullptr;
        bool complete = !writer.cancelled() && (!chunked || send_and_wait("0\r\n\r\n"));
        net::post(socket_.get_executor(), [self = shared_from_this(), complete, keep_alive] {
            self->stop_watching();
            // A cut stream ends without its last chunk: the client sees it is incomplete.
            if (!complete || !keep_alive) return self->close();
            self->read_header();
        });
    }

    // ---- closing ----

    // After an error response: half-close, then read and drop what the client is still
    // sending (bounded in bytes and time), so closing does not reset the connection
    // before the client has read the response.
    void drain() {
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        drained_ = 0;
        arm(std::chrono::seconds(kDrainSeconds));
        drain_some();
    }
    void drain_some() {
        socket_.async_read_some(net::buffer(scratch_),
                                [self = shared_from_this()](error_code ec, size_t n) {
                                    self->drained_ += n;
                                    if (ec || self->drained_ > kDrainLimit) {
                                        self->disarm();
                                        return self->close();
                                    }
                                    self->drain_some();
                                });
    }

    void close() {
        disarm();
        discard_spool();
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    // Closes and removes the spooled body of the current request, if any.
    void discard_spool() {
        if (auto* f = std::get_if<FileParser>(&body_)) f->get().body().close();
        if (!spool_path_.empty()) {
            std::error_code ec;
            fs::remove(spool_path_, ec);
            spool_path_.clear();
        }
    }

    using StringParser = bhttp::request_parser<bhttp::string_body>;
    using FileParser = bhttp::request_parser<bhttp::file_body>;

    tcp::socket socket_;
    net::steady_timer timer_;
    HttpServer::Impl& srv_;
    beast::flat_buffer buffer_;  // unbounded: header_limit and body_limit bound it
    std::optional<bhttp::request_parser<bhttp::empty_body>> head_;  // reads the header
    std::variant<std::monostate, StringParser, FileParser> body_;   // then the body
    HttpRequest req_;
    RequestPolicy policy_;
    std::string spool_path_;  // the body file of the current request, "" if none
    bool keep_alive_ = false;
    unsigned version_ = 11;
    uint64_t timer_gen_ = 0;
    bool timed_out_ = false;
    bool reading_header_ = false;
    uint64_t watch_gen_ = 0;
    bool watching_ = false;
    std::atomic<bool> peer_gone_{false};  // set on the strand, read by the producer
    size_t drained_ = 0;
    char scratch_[16384];
};

void HttpServer::Impl::do_accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
        on_accept(ec, std::move(socket));
    });
}

void HttpServer::Impl::reject_busy(tcp::socket& socket) {
    if (opts.on_transport_error) opts.on_transport_error(503);
    HttpResponse r = error(503, "too many open connections (limit " +
                                    std::to_string(opts.max_connections) + "); retry later");
    std::string raw =
        "HTTP/1.1 503 Service Unavailable\r\nServer: ragd\r\nContent-Type: " + r.content_type +
        "\r\nContent-Length: " + std::to_string(r.body.size()) +
        "\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" + r.body;
    error_code ec;
    socket.non_blocking(true, ec);
    net::write(socket, net::buffer(raw), ec);  // best effort: a fresh socket's buffer holds it
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
}

void HttpServer::Impl::on_accept(error_code ec, tcp::socket socket) {
    if (stopping.load() || ec == net::error::operation_aborted) return;
    if (ec) {
        // EMFILE, ENFILE, ENOBUFS...: keep the listener alive and try again shortly
        // (http_listener stops accepting for good in this case, cpprestsdk #1830).
        std::fprintf(stderr, "ragd: accept failed: %s; retrying\n", ec.message().c_str());
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](error_code e) {
            if (!e && !stopping.load()) do_accept();
        });
        return;
    }
    if (active.load() >= opts.max_connections) {
        reject_busy(socket);
    } else {
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto s = std::make_shared<Session>(std::move(socket), *this);
        {
            std::lock_guard lock(mu);
            sessions[s.get()] = s;
        }
        s->start();
    }
    do_accept();
}

HttpServer::HttpServer(HttpOptions opts, HttpHandler handler, HttpErrorMaker make_error)
    : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    impl_->handler = std::move(handler);
    impl_->make_error = std::move(make_error);
}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::start() {
    Impl& s = *impl_;
    if (s.started) throw Error(Error::Code::InvalidArgument, "HTTP server already started");
    if (s.opts.threads < 1 || s.opts.handler_threads < 1 || s.opts.max_queued_requests < 0 ||
        s.opts.max_connections < 1 || s.opts.read_timeout_s < 1 || s.opts.write_timeout_s < 1 ||
        s.opts.max_header_bytes < 1024)
        throw Error(Error::Code::InvalidArgument, "invalid HTTP server options");
    if (!s.opts.spool_dir.empty()) {
        // The spool folder is ours: bodies left by a run that died are garbage.
        std::error_code fec;
        fs::create_directories(s.opts.spool_dir, fec);
        if (fec)
            throw Error(Error::Code::IO,
                        "cannot create " + s.opts.spool_dir + ": " + fec.message());
        for (const auto& e : fs::directory_iterator(s.opts.spool_dir, fec))
            if (e.path().filename().string().rfind(kSpoolPrefix, 0) == 0) fs::remove(e.path(), fec);
    }
    error_code ec;
    tcp::resolver resolver(s.ioc);
    auto results = resolver.resolve(s.opts.host, std::to_string(s.opts.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
        throw Error(Error::Code::IO, "cannot resolve host '" + s.opts.host + "': " + ec.message());
    tcp::endpoint ep = results.begin()->endpoint();
    s.acceptor.emplace(net::make_strand(s.ioc));
    s.acceptor->open(ep.protocol(), ec);
    if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) s.acceptor->bind(ep, ec);
    if (!ec) s.acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        throw Error(Error::Code::IO, "cannot listen on " + s.opts.host + ":" +
                                         std::to_string(s.opts.port) + ": " + ec.message());
    s.bound_port = s.acceptor->local_endpoint().port();
    s.retry_timer.emplace(s.acceptor->get_executor());
    s.started = true;
    s.pool.start(s.opts.handler_threads, s.opts.max_queued_requests);
    s.do_accept();
    for (int i = 0; i < s.opts.threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
}

int HttpServer::port() const {
    return impl_->bound_port;
}

HttpServer::Stats HttpServer::stats() const {
    Stats st;
    st.connections = impl_->active.load();
    st.running = impl_->pool.running();
    st.queued = impl_->pool.queued();
    return st;
}

void HttpServer::stop() {
    Impl& s = *impl_;
    if (!s.started || s.stopped) return;
    s.stopped = true;
    s.stopping.store(true);
    net::post(s.acceptor->get_executor(), [&s] {
        error_code ignored;
        s.acceptor->close(ignored);
        s.retry_timer->cancel();
    });
    // Take the sessions out under the lock, post to them after it: a shared_ptr that turns
    // out to be a session's last owner runs ~Session, which takes the same lock.
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(s.mu);
        for (auto& [p, weak] : s.sessions)
            if (auto sp = weak.lock()) live.push_back(std::move(sp));
    }
    for (auto& sp : live) net::post(sp->executor(), [sp] { sp->close_if_idle(); });
    live.clear();
    // Requests in flight (queued ones included) finish and their connections close after
    // the response; streams see `stopping` at their next write and end.
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(s.opts.shutdown_grace_s);
    while (s.active.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // Handler threads first, while the I/O threads still run: a handler thread may be
    // waiting for the strand to finish a write.
    s.pool.stop();
    s.ioc.stop();
    for (auto& t : s.threads) t.join();
    s.threads.clear();
}

// ---------------------------------------------------------------------------------------
// multipart/form-data
// ---------------------------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Parameters of a header value `type; a=b; c="d\"e"` (RFC 7231 3.1.1.1): the media type
// (or disposition) lowercased, and the parameters with lowercased names. Throws
// Error::InvalidArgument on an unterminated quoted string.
std::string parse_params(std::string_view v, std::map<std::string, std::string>* params) {
    size_t semi = v.find(';');
    std::string type = lower(std::string(trim(v.substr(0, semi))));
    size_t i = semi == std::string_view::npos ? v.size() : semi + 1;
    while (i < v.size()) {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ';')) ++i;
        size_t eq = v.find('=', i);
        size_t next_semi = v.find(';', i);
        if (eq == std::string_view::npos ||
            (next_semi != std::string_view::npos && next_semi < eq)) {
            i = next_semi == std::string_view::npos ? v.size() : next_semi + 1;  // no value
            continue;
        }
        std::string name = lower(std::string(trim(v.substr(i, eq - i))));
        i = eq + 1;
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
        std::string value;
        if (i < v.size() && v[i] == '"') {
            ++i;
            bool closed = false;
            for (; i < v.size(); ++i) {
                // Only \" and \\ are escapes: browsers never escape otherwise, and a
                // Windows path (C:\dir\a.txt, sent by old browsers) keeps its separators.
                if (v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) {
                    value += v[++i];
                } else if (v[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                } else {
                    value += v[i];
                }
            }
            if (!closed)
                throw Error(Error::Code::InvalidArgument, "unterminated quoted string in header");
        } else {
            size_t end = v.find(';', i);
            if (end == std::string_view::npos) end = v.size();
            value = std::string(trim(v.substr(i, end - i)));
            i = end;
        }
        if (!name.empty()) (*params)[name] = value;
    }
    return type;
}

}  // namespace

std::string multipart_boundary(const std::string& content_type) {
    std::map<std::string, std::string> params;
    std::string type;
    try {
        type = parse_params(content_type, &params);
    } catch (const Error&) {
        return "";
    }
    if (type != "multipart/form-data") return "";
    std::string b = params["boundary"];
    if (b.empty() || b.size() > 70 || b.back() == ' ') return "";
    for (char c : b)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return "";
    return b;
}

std::vector<MultipartPart> parse_multipart(std::string_view body, const std::string& boundary) {
    auto bad = [](const std::string& why) {
        return Error(Error::Code::InvalidArgument, "malformed multipart body: " + why);
    };
    if (boundary.empty()) throw bad("no boundary");
    const std::string delim = "--" + boundary;
    const std::string crlf_delim = "\r\n" + delim;
    size_t pos;
    if (body.substr(0, delim.size()) == delim) {
        pos = 0;
    } else {
        pos = body.find(crlf_delim);  // after a preamble
        if (pos == std::string_view::npos) throw bad("the boundary does not occur in the body");
        pos += 2;
    }
    std::vector<MultipartPart> parts;
    for (;;) {
        pos += delim.size();
        if (body.substr(pos, 2) == "--") return parts;  // close delimiter; epilogue ignored
        while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
        if (body.substr(pos, 2) != "\r\n") {
            if (pos >= body.size()) throw bad("truncated after a boundary (no closing boundary)");
            throw bad("a boundary line is followed by other characters");
        }
        pos += 2;
        // Part headers, up to an empty line.
        size_t headers_end;
        size_t data_start;
        if (body.substr(pos, 2) == "\r\n") {
            headers_end = pos;
            data_start = pos + 2;
        } else {
            headers_end = body.find("\r\n\r\n", pos);
            if (headers_end == std::string_view::npos) throw bad("truncated part header");
            data_start = headers_end + 4;
        }
        MultipartPart part;
        std::string_view headers = body.substr(pos, headers_end - pos);
        while (!headers.empty()) {
            size_t eol = headers.find("\r\n");
            std::string_view line = headers.substr(0, eol);
            headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
            size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0)
                throw bad("part header line without a name");
            std::string name = lower(std::string(trim(line.substr(0, colon))));
            std::string_view value = trim(line.substr(colon + 1));
            if (name == "content-disposition") {
                std::map<std::string, std::string> params;
                parse_params(value, &params);
                part.is_file = params.count("filename") || params.count("filename*");
                part.name = params["name"];
                part.filename = params["filename"];
                // RFC 5987 extended form: filename*=UTF-8''na%C3%AFve.txt wins when present.
                if (auto it = params.find("filename*"); it != params.end()) {
                    size_t q = it->second.find("''");
                    if (q != std::string::npos && lower(it->second.substr(0, q)) == "utf-8")
                        part.filename = url_decode(it->second.substr(q + 2), false);
                }
            } else if (name == "content-type") {
                part.content_type = std::string(value);
            }
        }
        size_t end = body.find(crlf_delim, data_start);
        if (end == std::string_view::npos) throw bad("truncated part (no closing boundary)");
        part.data = body.substr(data_start, end - data_start);
        parts.push_back(std::move(part));
        pos = end + 2;
    }
}

}  // namespace ragd
