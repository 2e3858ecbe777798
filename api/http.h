// api/http: the HTTP/1.1 transport of `ragd serve`, over Boost.Beast + Asio.
//
// Why Beast and not cpprestsdk's http_listener (the library first chosen for the REST API):
// http_listener has no request-size limit (cpprestsdk #253: a client can make the server
// buffer any body), no server-side timeouts (#1197: a client that sends one byte every few
// seconds holds a connection forever), and its listener stops accepting connections under
// load (#1830); the repository is archived, so none of these will be fixed. Beast exposes
// the parser, so the limits are enforced where they must be: the header size while reading
// the header, the body size from Content-Length before one byte of the body is read (and
// chunk by chunk for chunked bodies), and deadlines on every read and write.
//
// Routes never see this layer: a handler is a plain function HttpRequest -> HttpResponse,
// so the transport can change without touching them.
//
// Design: one io_context run by `threads` threads; every connection is a Session on its
// own strand. Handlers run on the I/O threads (at most `threads` requests execute at
// once; the rest wait in their sessions). Per connection:
//   read header   (deadline read_timeout_s from the first read, not reset by each byte)
//                  -> 431 when over max_header_bytes, 400 when malformed,
//                     408 when the deadline passes after some bytes arrived (an idle
//                     keep-alive connection is just closed)
//   check body     Content-Length over max_body_bytes -> 413 before reading the body;
//                  chunked bodies -> 413 as soon as the running total exceeds it;
//                  "Expect: 100-continue" answered only when the body is acceptable
//   read body      (deadline read_timeout_s + 1 s per MiB announced) -> 408 when it passes
//   handler        -> response; keep-alive unless the client or a shutdown says otherwise
//   write          (deadline write_timeout_s; a client that does not read is dropped)
// Beyond max_connections open connections, a new connection gets 503 and is closed.
// After an error response the server half-closes and drains (bounded) what the client
// still sends, so the client can read the response instead of getting a reset.
//
// Thread safety: start() and stop() from one controlling thread; the handler is called
// concurrently from the I/O threads and must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ragd {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // as sent: path and query string
    std::string path;    // target up to '?', percent-decoded
    std::map<std::string, std::string> query;    // decoded ('+' is a space); last value wins
    std::map<std::string, std::string> headers;  // names lowercased; repeated ones joined ", "
    std::string body;

    // The header's value, or "" when absent. NAME is lowercase.
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Makes the response the transport sends for its own errors (408, 413, 431, 400, 503),
// so they have the same body shape as the routes' errors.
using HttpErrorMaker = std::function<HttpResponse(int status, const std::string& message)>;

struct HttpOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                       // 0 picks a free port; see HttpServer::port()
    int threads = 4;                       // I/O threads, which also run the handlers
    int max_connections = 512;             // open connections; beyond: 503 and close
    uint32_t max_header_bytes = 16 << 10;  // request line + headers
    uint64_t max_body_bytes = 64ull << 20;
    int read_timeout_s = 15;   // to receive a whole header, and a body (+1 s per MiB)
    int write_timeout_s = 30;  // to send a whole response
    int shutdown_grace_s = 20; // stop() waits this long for in-flight requests
    // Called (from an I/O thread) with the status of every response the transport makes
    // itself, for metrics. Optional.
    std::function<void(int status)> on_transport_error;
};

class HttpServer {
  public:
    HttpServer(HttpOptions opts, HttpHandler handler, HttpErrorMaker make_error);
    ~HttpServer();  // stops if running
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds, listens and starts the I/O threads. Throws Error::IO when the address cannot
    // be resolved or bound, Error::InvalidArgument for bad options.
    void start();
    // The bound port (the real one when opts.port was 0). Valid after start().
    int port() const;
    // Graceful stop: closes the listener, closes idle connections, lets requests in flight
    // finish (up to shutdown_grace_s), then stops the threads. Idempotent.
    void stop();

    struct Impl;  // opaque: Beast and Asio stay in http.cpp

  private:
    std::unique_ptr<Impl> impl_;
};

// Percent-decodes S ('+' as space when PLUS_IS_SPACE). Bad escapes are kept as is.
std::string url_decode(const std::string& s, bool plus_is_space);

}  // namespace ragd
