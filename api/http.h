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
// Design: one io_context run by `threads` I/O threads; every connection is a Session on
// its own strand. Handlers run on a separate pool of `handler_threads` threads, because
// they block (SQLite, Xapian, FAISS, file writes, later token generation): a slow handler
// must never stall the I/O threads, or every other connection would stall with it. At
// most handler_threads requests run at once and max_queued_requests more wait; beyond
// that a request gets 503 at once (and Retry-After), and the service recovers as soon as
// the queue drains. A request whose RequestPolicy says run_inline (a health check) runs on
// the I/O thread instead, so it is answered even while every handler thread is busy.
// Per connection:
//   read header   (deadline read_timeout_s from the first read, not reset by each byte)
//                  -> 431 when over max_header_bytes, 400 when malformed,
//                     408 when the deadline passes after some bytes arrived (an idle
//                     keep-alive connection is just closed)
//   policy        RequestPolicy for (method, path): the body limit, whether the body goes
//                  to a file (uploads) rather than memory, whether the handler runs inline
//   check body     Content-Length over the limit -> 413 before reading the body;
//                  chunked bodies -> 413 as soon as the running total exceeds it;
//                  "Expect: 100-continue" answered only when the body is acceptable
//   read body      (deadline read_timeout_s + 1 s per MiB announced) -> 408 when it passes
//   handler        on the handler pool (or inline) -> response; 503 when the queue is full
//   write          (deadline write_timeout_s; a client that does not read is dropped);
//                  a streamed response is sent with chunked transfer encoding as its
//                  producer writes, never buffered whole
//   keep-alive unless the client or a shutdown says otherwise
// Beyond max_connections open connections, a new connection gets 503 and is closed.
// After an error response the server half-closes and drains (bounded) what the client
// still sends, so the client can read the response instead of getting a reset.
//
// Thread safety: start() and stop() from one controlling thread; the handler is called
// concurrently from the handler threads and must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ragd {

struct HttpRequest {
    std::string method;                          // "GET", "POST", ...
    std::string target;                          // as sent: path and query string
    std::string path;                            // target up to '?', percent-decoded
    std::map<std::string, std::string> query;    // decoded ('+' is a space); last value wins
    std::map<std::string, std::string> headers;  // names lowercased; repeated ones joined ", "
    std::string body;                            // empty when the body was spooled
    // When the RequestPolicy asked for spooling and the request has a body: the file that
    // holds it, else "". The transport removes it once the handler returns; the handler
    // may rename it elsewhere to keep it.
    std::string body_file;

    // The header's value, or "" when absent. NAME is lowercase.
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// What a streamed response body is written to (see HttpResponse::stream).
class BodyWriter {
  public:
    virtual ~BodyWriter() = default;
    // Sends DATA to the client (one HTTP chunk) and returns once the socket took it, so a
    // producer never runs ahead of a slow client by more than one write. Returns false
    // once the client is gone (closed, reset, or not reading for write_timeout_s) or the
    // server is stopping: the producer should then return. Empty DATA sends nothing.
    virtual bool write(std::string_view data) = 0;
    // True once write() would return false. For a producer that computes for a while
    // between writes (a model generating tokens): the client closing or resetting the
    // connection is noticed here while no write is pending.
    virtual bool cancelled() const = 0;
};
using BodyProducer = std::function<void(BodyWriter&)>;

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    // When set, `body` is ignored: the header is sent at once, then the producer runs (on
    // the handler thread) and what it writes goes out as it is written, with chunked
    // transfer encoding (to HTTP/1.0 clients: unframed, and the connection closes at the
    // end). When the producer returns the body ends; if the client went away or the server
    // is stopping, the connection is closed without the final chunk, so a client never
    // mistakes a cut stream for a complete one. A producer whose client is gone before it
    // starts is not called (only destroyed).
    BodyProducer stream;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Makes the response the transport sends for its own errors (408, 413, 431, 400, 503),
// so they have the same body shape as the routes' errors.
using HttpErrorMaker = std::function<HttpResponse(int status, const std::string& message)>;

// How the transport treats one request, decided from its header alone.
struct RequestPolicy {
    uint64_t max_body_bytes = 64ull << 20;  // larger bodies get 413
    bool spool_body = false;  // write the body to a file in spool_dir instead of memory
    bool run_inline = false;  // handler never blocks: run it on the I/O thread
};
// Called with the request as soon as its header is parsed (body still empty).
using RequestPolicyFn = std::function<RequestPolicy(const HttpRequest& head)>;

struct HttpOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                        // 0 picks a free port; see HttpServer::port()
    int threads = 2;                        // I/O threads (accept, read, write)
    int handler_threads = 4;                // threads that run handlers and stream producers
    int max_queued_requests = 64;           // requests waiting for a handler thread; beyond: 503
    int max_connections = 512;              // open connections; beyond: 503 and close
    uint32_t max_header_bytes = 16 << 10;   // request line + headers
    uint64_t max_body_bytes = 64ull << 20;  // the limit when there is no policy function
    int read_timeout_s = 15;                // to receive a whole header, and a body (+1 s per MiB)
    int write_timeout_s = 30;               // to send a whole response, or one chunk of a stream
    int shutdown_grace_s = 20;              // stop() waits this long for in-flight requests
    // Per-request policy; null: max_body_bytes, in memory, on the handler pool.
    RequestPolicyFn policy;
    // Folder for spooled bodies (created by start(); files left in it by an earlier run
    // are removed then). Required when the policy may ask for spooling.
    std::string spool_dir;
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

    // Binds, listens and starts the threads. Throws Error::IO when the address cannot be
    // resolved or bound, Error::InvalidArgument for bad options.
    void start();
    // The bound port (the real one when opts.port was 0). Valid after start().
    int port() const;
    // Graceful stop: closes the listener, closes idle connections, lets requests in flight
    // (queued ones included) finish up to shutdown_grace_s, cancels streams, then stops
    // the threads. Idempotent.
    void stop();

    // Gauges for /metrics. Safe from any thread.
    struct Stats {
        int connections = 0;  // open connections
        int running = 0;      // requests on a handler thread (streams included)
        int queued = 0;       // requests waiting for one
    };
    Stats stats() const;

    struct Impl;  // opaque: Beast and Asio stay in http.cpp

  private:
    std::unique_ptr<Impl> impl_;
};

// Percent-decodes S ('+' as space when PLUS_IS_SPACE). Bad escapes are kept as is.
std::string url_decode(const std::string& s, bool plus_is_space);

// ---- multipart/form-data (RFC 7578) ----

struct MultipartPart {
    std::string name;      // the form field name ("" if absent)
    std::string filename;  // as sent; the caller sanitizes it
    bool is_file = false;  // Content-Disposition has a filename (possibly empty) parameter
    std::string content_type;
    std::string_view data;  // a view into the body given to parse_multipart
};

// The boundary parameter of a multipart Content-Type (quoted or not), or "" when the type
// is not multipart/form-data or has no usable boundary (RFC 2046: 1 to 70 characters).
std::string multipart_boundary(const std::string& content_type);

// Splits BODY into its parts. Parts are delimited by CRLF "--" BOUNDARY lines; the
// preamble and epilogue are ignored. Throws Error::InvalidArgument when the body does not
// start with a delimiter, a part has no header end, a header line is malformed, or the
// closing "--BOUNDARY--" is missing (a truncated upload). The views point into BODY.
std::vector<MultipartPart> parse_multipart(std::string_view body, const std::string& boundary);

}  // namespace ragd
