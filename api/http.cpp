// api/http: Beast sessions, the accept loop and graceful shutdown (design in http.h).
#include "api/http.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "config/config.h"

namespace ragd {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr size_t kDrainLimit = 4u << 20;  // bytes read and dropped after an error response
constexpr int kDrainSeconds = 2;

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

}  // namespace

std::string url_decode(const std::string& s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 &&
            hexval(s[i + 2]) >= 0) {
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
};

// One connection. All its handlers run on its strand, so its members need no locks.
class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket&& socket, HttpServer::Impl& srv)
        : socket_(std::move(socket)), timer_(socket_.get_executor()), srv_(srv) {
        srv_.active.fetch_add(1);
    }
    ~Session() {
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
        if (reading_header_ && buffer_.size() == 0 && parser_ && !parser_->got_some()) close();
    }

    auto executor() { return socket_.get_executor(); }

  private:
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

    void read_header() {
        if (srv_.stopping.load()) return close();
        parser_.emplace();
        parser_->header_limit(srv_.opts.max_header_bytes);
        parser_->body_limit(srv_.opts.max_body_bytes);
        reading_header_ = true;
        arm(std::chrono::seconds(srv_.opts.read_timeout_s));
        bhttp::async_read_header(socket_, buffer_, *parser_,
                                 [self = shared_from_this()](error_code ec, size_t) {
                                     self->on_header(ec);
                                 });
    }

    void on_header(error_code ec) {
        reading_header_ = false;
        if (ec) {
            disarm();
            return read_failed(ec, /*in_header=*/true);
        }
        const auto& req = parser_->get();
        if (auto len = parser_->content_length(); len && *len > srv_.opts.max_body_bytes)
            return send_error(413, "request body of " + std::to_string(*len) +
                                       " bytes is over the limit of " +
                                       std::to_string(srv_.opts.max_body_bytes) + " bytes");
        if (parser_->is_done()) {
            disarm();
            return handle();
        }
        // The body deadline grows with the announced size: read_timeout_s + 1 s per MiB.
        uint64_t len = parser_->content_length().value_or(0);
        arm(std::chrono::seconds(srv_.opts.read_timeout_s) +
            std::chrono::seconds(static_cast<int64_t>(len >> 20)));
        auto expect = req.find(bhttp::field::expect);
        if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
            static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            net::async_write(socket_, net::buffer(kContinue),
                             [self = shared_from_this()](error_code ec, size_t) {
                                 if (ec) return self->read_failed(ec, false);
                                 self->read_body();
                             });
            return;
        }
        read_body();
    }

    void read_body() {
        bhttp::async_read(socket_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, size_t) {
                              self->disarm();
                              if (ec) return self->read_failed(ec, false);
                              self->handle();
                          });
    }

    void read_failed(error_code ec, bool in_header) {
        if (timed_out_) {
            // Idle keep-alive connections close silently; a started request gets 408.
            if (in_header && buffer_.size() == 0 && !parser_->got_some()) return close();
            return send_error(408, "the request was not received within the read timeout");
        }
        if (ec == bhttp::error::header_limit)
            return send_error(431, "request header is over the limit of " +
                                       std::to_string(srv_.opts.max_header_bytes) + " bytes");
        if (ec == bhttp::error::body_limit)
            return send_error(413, "request body is over the limit of " +
                                       std::to_string(srv_.opts.max_body_bytes) + " bytes");
        // The client went away, or a socket error: nobody to answer.
        if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
            ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category())
            return close();
        return send_error(400, std::string("malformed HTTP request: ") + ec.message());
    }

    void handle() {
        auto& req = parser_->get();
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        std::string raw_path = r.target, query;
        if (size_t q = r.target.find('?'); q != std::string::npos) {
            raw_path = r.target.substr(0, q);
            query = r.target.substr(q + 1);
        }
        r.path = url_decode(raw_path, false);
        size_t pos = 0;
        while (pos <= query.size() && !query.empty()) {
            size_t amp = query.find('&', pos);
            if (amp == std::string::npos) amp = query.size();
            std::string part = query.substr(pos, amp - pos);
            if (!part.empty()) {
                size_t eq = part.find('=');
                std::string k = url_decode(part.substr(0, eq), true);
                std::string v = eq == std::string::npos ? "" : url_decode(part.substr(eq + 1), true);
                r.query[k] = v;
            }
            pos = amp + 1;
        }
        for (const auto& f : req) {
            std::string name = lower(std::string(f.name_string()));
            std::string& slot = r.headers[name];
            if (!slot.empty()) slot += ", ";
            slot += std::string(f.value());
        }
        r.body = std::move(req.body());
        bool keep_alive = req.keep_alive();
        unsigned version = req.version();

        HttpResponse resp;
        try {
            resp = srv_.handler(r);
        } catch (const std::exception& e) {
            resp = srv_.make_error(500, std::string("internal error: ") + e.what());
        } catch (...) {
            resp = srv_.make_error(500, "internal error");
        }
        write(std::move(resp), keep_alive && !srv_.stopping.load(), version, /*drain=*/false);
    }

    void send_error(int status, const std::string& message) {
        if (srv_.opts.on_transport_error) srv_.opts.on_transport_error(status);
        HttpResponse resp;
        try {
            resp = srv_.make_error(status, message);
        } catch (...) {
            resp.status = status;
            resp.body = "{}";
        }
        write(std::move(resp), false, 11, /*drain=*/true);
    }

    void write(HttpResponse resp, bool keep_alive, unsigned version, bool drain) {
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
            static_cast<bhttp::status>(resp.status), version);
        res->set(bhttp::field::server, "ragd");
        res->set(bhttp::field::content_type, resp.content_type);
        res->set(bhttp::field::cache_control, "no-store");
        for (auto& [k, v] : resp.headers) res->set(k, v);
        res->body() = std::move(resp.body);
        res->keep_alive(keep_alive);
        res->prepare_payload();
        arm(std::chrono::seconds(srv_.opts.write_timeout_s));
        bhttp::async_write(socket_, *res,
                           [self = shared_from_this(), res, keep_alive, drain](error_code ec, size_t) {
                               self->disarm();
                               if (ec) return self->close();
                               if (drain) return self->drain();
                               if (!keep_alive) return self->close();
                               self->read_header();
                           });
    }

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
        socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](error_code ec,
                                                                                     size_t n) {
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
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    net::steady_timer timer_;
    HttpServer::Impl& srv_;
    beast::flat_buffer buffer_;  // unbounded: header_limit and body_limit bound it
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    uint64_t timer_gen_ = 0;
    bool timed_out_ = false;
    bool reading_header_ = false;
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
    HttpResponse r = make_error(503, "too many open connections (limit " +
                                         std::to_string(opts.max_connections) + "); retry later");
    std::string raw = "HTTP/1.1 503 Service Unavailable\r\nServer: ragd\r\nContent-Type: " +
                      r.content_type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
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
    if (s.opts.threads < 1 || s.opts.max_connections < 1 || s.opts.read_timeout_s < 1 ||
        s.opts.write_timeout_s < 1 || s.opts.max_header_bytes < 1024)
        throw Error(Error::Code::InvalidArgument, "invalid HTTP server options");
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
    s.do_accept();
    for (int i = 0; i < s.opts.threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
}

int HttpServer::port() const {
    return impl_->bound_port;
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
    // Requests in flight finish and their connections close after the response.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s.opts.shutdown_grace_s);
    while (s.active.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s.ioc.stop();
    for (auto& t : s.threads) t.join();
    s.threads.clear();
}

}  // namespace ragd
