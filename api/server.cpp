// api/server: routes, auth, Host check, metrics, uploads, streaming, the ingestion runner
// and `ragd serve`.
#include "api/server.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "api/http.h"
#include "api/json.h"
#include "api/model_generator.h"
#include "config/config.h"
#include "generate/extract.h"
#include "generate/generate.h"
#include "generate/json_schema.h"
#include "index/gguf_embedder.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "ingest/store.h"
#include "retrieve/retrieve.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace ragd {

namespace {

constexpr int kMaxJsonDepth = 64;  // deeper request bodies are refused before parsing
constexpr size_t kMaxFilenameBytes = 200;
constexpr size_t kMaxUploadFiles = 100;     // files in one multipart request
constexpr size_t kMaxChatMessages = 10000;  // messages in one chat request
constexpr size_t kMaxEmbedInputs = 2048;    // inputs in one embeddings request (OpenAI's)
constexpr int kDefaultMaxTokens = 512;      // max_tokens when a request does not say

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

// Thrown by route code; turned into {"error": {...}} with its status.
struct ApiError {
    int status;
    std::string message;
    std::string code;
};

const char* error_type(int status) {
    switch (status) {
        case 401:
            return "authentication_error";
        case 403:
            return "permission_error";
        case 404:
            return "not_found_error";
        case 501:
            return "not_implemented_error";
        case 503:
            return "service_unavailable_error";
        default:
            return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

const char* default_code(int status) {
    switch (status) {
        case 400:
            return "bad_request";
        case 401:
            return "unauthorized";
        case 403:
            return "forbidden";
        case 404:
            return "not_found";
        case 405:
            return "method_not_allowed";
        case 408:
            return "request_timeout";
        case 413:
            return "payload_too_large";
        case 415:
            return "unsupported_media_type";
        case 421:
            return "misdirected_request";
        case 431:
            return "header_too_large";
        case 501:
            return "not_implemented";
        case 503:
            return "service_unavailable";
        case 507:
            return "insufficient_storage";
        default:
            return status >= 500 ? "internal_error" : "bad_request";
    }
}

std::string dump(const json& j) {
    // Stored text is valid UTF-8 (ingestion repairs it); never throw on it anyway.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_json(int status, const std::string& message, std::string code) {
    if (code.empty()) code = default_code(status);
    return {{"error", {{"message", message}, {"type", error_type(status)}, {"code", code}}}};
}

HttpResponse error_response(int status, const std::string& message, std::string code = "") {
    HttpResponse r;
    r.status = status;
    r.body = dump(error_json(status, message, std::move(code)));
    return r;
}

HttpResponse json_response(int status, const json& j) {
    HttpResponse r;
    r.status = status;
    r.body = dump(j);
    return r;
}

int status_of(const Error& e) {
    switch (e.code()) {
        case Error::Code::InvalidArgument:
            return 400;
        case Error::Code::NotFound:
            return 404;
        case Error::Code::Unsupported:
            return 415;
        case Error::Code::Busy:
            return 503;
        default:
            return 500;
    }
}

// One server-sent event: "data: JSON\n\n". dump() never emits a newline, so the event is
// a single data line.
std::string sse(const json& j) {
    return "data: " + dump(j) + "\n\n";
}
const char* const kSseDone = "data: [DONE]\n\n";

HttpResponse sse_response(BodyProducer producer) {
    HttpResponse r;
    r.content_type = "text/event-stream; charset=utf-8";
    r.headers.push_back({"X-Accel-Buffering", "no"});  // proxies: do not buffer the stream
    r.stream = std::move(producer);
    return r;
}

// ---------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------

// Nesting depth of the JSON text, counted outside strings: refusing deep documents before
// parsing keeps recursion (in the parser, in destructors, in our code) bounded.
int json_depth(const std::string& s) {
    int depth = 0, max_depth = 0;
    bool in_string = false, escape = false;
    for (char c : s) {
        if (in_string) {
            if (escape)
                escape = false;
            else if (c == '\\')
                escape = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{')
            max_depth = std::max(max_depth, ++depth);
        else if (c == ']' || c == '}')
            --depth;
    }
    return max_depth;
}

json parse_object(const HttpRequest& req) {
    if (req.body.empty())
        throw ApiError{400, "the request body must be a JSON object", "invalid_json"};
    if (json_depth(req.body) > kMaxJsonDepth)
        throw ApiError{
            400,
            "the request body is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels",
            "invalid_json"};
    json j;
    try {
        j = json::parse(req.body);  // rejects invalid UTF-8 in strings
    } catch (const json::parse_error& e) {
        throw ApiError{400, std::string("malformed JSON: ") + e.what(), "invalid_json"};
    }
    if (!j.is_object())
        throw ApiError{400, "the request body must be a JSON object", "invalid_json"};
    return j;
}

// A member of the body (by a path of keys) with its objects' keys in the order the client
// wrote them: json sorts keys, and a JSON Schema's properties are generated in their
// order. The body has already been parsed and checked by parse_object.
nlohmann::ordered_json ordered_member(const HttpRequest& req,
                                      std::initializer_list<const char*> path) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(req.body);
    for (const char* key : path) j = nlohmann::ordered_json(j.at(key));
    return j;
}

ApiError type_error(const std::string& key, const char* what) {
    return ApiError{400, "'" + key + "' must be " + what, "invalid_type"};
}

std::optional<std::string> opt_string(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw type_error(key, "a string");
    return it->get<std::string>();
}

int64_t opt_int(const json& o, const char* key, int64_t def, int64_t lo, int64_t hi) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return def;
    if (!it->is_number_integer()) throw type_error(key, "an integer");
    auto range = [&](const std::string& got) {
        return ApiError{400,
                        std::string("'") + key + "' must be from " + std::to_string(lo) + " to " +
                            std::to_string(hi) + got,
                        "out_of_range"};
    };
    // Unsigned values above INT64_MAX are out of range too.
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw range("");
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) throw range(", got " + std::to_string(v));
    return v;
}

double opt_number(const json& o, const char* key, double def, double lo, double hi) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return def;
    if (!it->is_number()) throw type_error(key, "a number");
    double v = it->get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) {
        std::ostringstream m;
        m << "'" << key << "' must be from " << lo << " to " << hi;
        throw ApiError{400, m.str(), "out_of_range"};
    }
    return v;
}

bool opt_bool(const json& o, const char* key, bool def) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return def;
    if (!it->is_boolean()) throw type_error(key, "true or false");
    return it->get<bool>();
}

bool blank(const std::string& s) {
    return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// "123" -> 123; anything else (sign, letters, zero, overflow) -> 400.
int64_t parse_id(const std::string& s, const char* what) {
    bool digits = !s.empty() && s.size() <= 18 &&
                  std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
    int64_t v = digits ? std::stoll(s) : 0;
    if (v <= 0)
        throw ApiError{400, std::string(what) + " id must be a positive integer, got '" + s + "'",
                       "invalid_id"};
    return v;
}

bool valid_utf8(const std::string& s) {
    std::string copy = s;
    return repair_utf8(copy) == 0;
}

// Upload names: the last path component (so "../../etc/passwd" is "passwd"), no control
// characters, no leading dot, at most kMaxFilenameBytes (the extension kept), valid
// UTF-8. Throws ApiError 400 otherwise.
std::string sanitize_filename(const std::string& raw) {
    if (!valid_utf8(raw)) throw ApiError{400, "filename is not valid UTF-8", "invalid_filename"};
    std::string name = raw;
    size_t slash = name.find_last_of("/\\");
    if (slash != std::string::npos) name = name.substr(slash + 1);
    for (char& c : name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ':') c = '_';
    while (!name.empty() && (name[0] == '.' || name[0] == ' ')) name.erase(0, 1);
    if (name.empty() || name.find("..") != std::string::npos)
        throw ApiError{400, "filename '" + raw + "' is not a usable file name", "invalid_filename"};
    if (name.size() > kMaxFilenameBytes) {
        std::string ext = fs::path(name).extension().string();
        if (ext.size() > 16) ext.clear();
        size_t keep = kMaxFilenameBytes - ext.size();
        while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
        name = name.substr(0, keep) + ext;
    }
    return name;
}

// Constant-time comparison (in the length of the expected key).
bool same_secret(const std::string& given, const std::string& expected) {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i)
        diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
    return diff == 0;
}

bool is_loopback_host(const std::string& h) {
    return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
}

bool is_under(const std::string& path, const std::string& root) {
    if (root == "/") return true;
    return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                            path[root.size()] == '/');
}

bool is_multipart(const HttpRequest& req) {
    std::string ct = req.header("content-type");
    std::transform(ct.begin(), ct.end(), ct.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ct.rfind("multipart/", 0) == 0;
}

// The body of an upload request, in memory or in the transport's spool file (mapped, so a
// large upload is never copied into the heap).
class UploadBody {
  public:
    explicit UploadBody(const HttpRequest& req) {
        if (req.body_file.empty()) {
            view_ = req.body;
            return;
        }
        path_ = req.body_file;
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw Error(Error::Code::IO, "cannot read the uploaded body");
        struct stat st {};
        if (fstat(fd, &st) == 0 && st.st_size > 0) {
            void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                map_ = p;
                size_ = static_cast<size_t>(st.st_size);
                view_ = std::string_view(static_cast<const char*>(p), size_);
            }
        }
        ::close(fd);
        if (st.st_size > 0 && !map_) throw Error(Error::Code::IO, "cannot map the uploaded body");
    }
    ~UploadBody() {
        if (map_) munmap(map_, size_);
    }
    UploadBody(const UploadBody&) = delete;
    UploadBody& operator=(const UploadBody&) = delete;

    std::string_view view() const { return view_; }
    const std::string& spool_path() const { return path_; }  // "" when in memory

  private:
    std::string path_;
    void* map_ = nullptr;
    size_t size_ = 0;
    std::string_view view_;
};

std::string sha256_of(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw Error(Error::Code::Internal, "SHA-256 failed");
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 15];
    }
    return out;
}

std::string base64(const unsigned char* p, size_t n) {
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16;
        if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
        if (i + 2 < n) v |= p[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < n ? kAlphabet[v & 63] : '=';
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Metrics (Prometheus text format)
// ---------------------------------------------------------------------------------------

class Metrics {
  public:
    static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,   0.5,   1,    2.5,   10};

    void record(const std::string& route, int status, double seconds) {
        std::lock_guard lock(mu_);
        ++requests_[{route, status}];
        Histogram& h = latency_[route];
        for (size_t i = 0; i < kBuckets.size(); ++i)
            if (seconds <= kBuckets[i]) ++h.buckets[i];
        ++h.count;
        h.sum += seconds;
    }

    void add_tokens(int64_t n) { tokens_.fetch_add(n > 0 ? n : 0); }

    std::string render(const StoreCounts& c, const HttpServer::Stats& t, bool model_loaded) {
        std::ostringstream o;
        std::lock_guard lock(mu_);
        o << "# HELP ragd_http_requests_total HTTP requests by route and status (route "
             "\"transport\": answered by the transport itself, e.g. 408, 413, 503).\n"
             "# TYPE ragd_http_requests_total counter\n";
        for (auto& [key, n] : requests_)
            o << "ragd_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
              << "\"} " << n << "\n";
        o << "# HELP ragd_http_request_duration_seconds Time to answer a request, by route "
             "(streams: to their end).\n"
             "# TYPE ragd_http_request_duration_seconds histogram\n";
        for (auto& [route, h] : latency_) {
            for (size_t i = 0; i < kBuckets.size(); ++i)
                o << "ragd_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\""
                  << kBuckets[i] << "\"} " << h.buckets[i] << "\n";
            o << "ragd_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} "
              << h.count << "\n";
            o << "ragd_http_request_duration_seconds_sum{route=\"" << route << "\"} " << h.sum
              << "\n";
            o << "ragd_http_request_duration_seconds_count{route=\"" << route << "\"} " << h.count
              << "\n";
        }
        o << "# HELP ragd_http_connections Open HTTP connections.\n"
          << "# TYPE ragd_http_connections gauge\n"
          << "ragd_http_connections " << t.connections << "\n"
          << "# HELP ragd_http_requests_running Requests on a handler thread.\n"
          << "# TYPE ragd_http_requests_running gauge\n"
          << "ragd_http_requests_running " << t.running << "\n"
          << "# HELP ragd_http_requests_queued Requests waiting for a handler thread.\n"
          << "# TYPE ragd_http_requests_queued gauge\n"
          << "ragd_http_requests_queued " << t.queued << "\n"
          << "# HELP ragd_documents Documents in the store.\n# TYPE ragd_documents gauge\n"
          << "ragd_documents " << c.documents << "\n"
          << "# HELP ragd_chunks Chunks in the store.\n# TYPE ragd_chunks gauge\n"
          << "ragd_chunks " << c.chunks << "\n"
          << "# HELP ragd_ingest_queue_depth Ingestion jobs pending or running.\n"
          << "# TYPE ragd_ingest_queue_depth gauge\n"
          << "ragd_ingest_queue_depth " << c.jobs_pending + c.jobs_running << "\n"
          << "# HELP ragd_ingest_jobs_failed Ingestion jobs that failed.\n"
          << "# TYPE ragd_ingest_jobs_failed gauge\n"
          << "ragd_ingest_jobs_failed " << c.jobs_failed << "\n"
          << "# HELP ragd_model_loaded 1 when a generation model is loaded.\n"
          << "# TYPE ragd_model_loaded gauge\n"
          << "ragd_model_loaded " << (model_loaded ? 1 : 0) << "\n"
          << "# HELP ragd_tokens_generated_total Tokens generated by the model.\n"
          << "# TYPE ragd_tokens_generated_total counter\n"
          << "ragd_tokens_generated_total " << tokens_.load() << "\n";
        return o.str();
    }

  private:
    struct Histogram {
        std::array<uint64_t, kBuckets.size()> buckets{};  // cumulative: count with value <= le
        uint64_t count = 0;
        double sum = 0;
    };
    std::mutex mu_;  // guards requests_ and latency_
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
    std::atomic<int64_t> tokens_{0};
};

// Records a streamed request when its producer is destroyed: after the stream ended, or
// when the transport dropped it because the client was gone before it began.
struct RecordWhenDone {
    RecordWhenDone(Metrics* m, std::string r, int s, std::chrono::steady_clock::time_point t)
        : metrics(m), route(std::move(r)), status(s), t0(t) {}
    RecordWhenDone(const RecordWhenDone&) = delete;
    RecordWhenDone& operator=(const RecordWhenDone&) = delete;
    Metrics* metrics;
    std::string route;
    int status;
    std::chrono::steady_clock::time_point t0;
    ~RecordWhenDone() {
        metrics->record(
            route, status,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
};

// ---------------------------------------------------------------------------------------
// SQLite connections for request threads: one Store per concurrent request, reused.
// ---------------------------------------------------------------------------------------

class StorePool {
  public:
    explicit StorePool(std::string dir) : dir_(std::move(dir)) {}

    class Lease {
      public:
        Lease(StorePool* pool, std::unique_ptr<Store> s) : pool_(pool), s_(std::move(s)) {}
        ~Lease() { pool_->give_back(std::move(s_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Store& operator*() { return *s_; }
        Store* operator->() { return s_.get(); }

      private:
        StorePool* pool_;
        std::unique_ptr<Store> s_;
    };

    Lease take() {
        {
            std::lock_guard lock(mu_);
            if (!free_.empty()) {
                auto s = std::move(free_.back());
                free_.pop_back();
                return Lease(this, std::move(s));
            }
        }
        return Lease(this, std::make_unique<Store>(dir_));
    }

  private:
    void give_back(std::unique_ptr<Store> s) {
        std::lock_guard lock(mu_);
        free_.push_back(std::move(s));
    }
    std::string dir_;
    std::mutex mu_;  // guards free_
    std::vector<std::unique_ptr<Store>> free_;
};

std::string new_id(const char* prefix) {
    static std::atomic<uint64_t> seq{0};
    static const uint64_t start = static_cast<uint64_t>(std::time(nullptr));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s-%llx%06llx", prefix, static_cast<unsigned long long>(start),
                  static_cast<unsigned long long>(seq.fetch_add(1)));
    return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The API: routes and ingestion
// ---------------------------------------------------------------------------------------

struct Api::Impl {
    Impl(ServerConfig sc, std::vector<std::string> roots)
        : sc_(std::move(sc)), roots_(std::move(roots)), stores_(sc_.data_dir) {
        cfg_.data_dir = sc_.data_dir;
        cfg_.workers = sc_.workers;
        // An upload the server accepts must not then fail ingestion for its size.
        cfg_.max_file_bytes =
            std::max(cfg_.max_file_bytes, static_cast<int64_t>(sc_.max_upload_bytes));
        // Crash recovery, then the indexes.
        cfg_.embed_model = sc_.embed_model;
        cfg_.rerank_model = sc_.rerank_model;
        cfg_.rerank_top_n = sc_.rerank_top_n;
        auto store = stores_.take();
        store->requeue_running_jobs();
        // The embedding model (or the one the data directory recorded). A switch from
        // another embedder re-embeds in the background (start_ingest) while the old
        // vectors keep serving; sync() keeps them current meanwhile.
        EmbedderChoice emb = choose_embedder(cfg_);
        embedder_ = emb.target;
        gguf_embedder_ = dynamic_cast<const GgufEmbedder*>(embedder_.get());
        if (!cfg_.rerank_model.empty()) reranker_ = make_gguf_reranker(cfg_.rerank_model);
        indexes_ = std::make_unique<Indexes>(cfg_, emb.target, emb.resolver);
        indexes_->set_background_reembed(true);
        indexes_->sync(*store);
        if (std::string note = indexes_->vector_note(); !note.empty())
            std::fprintf(stderr, "ragd: note: %s\n", note.c_str());
        std::lock_guard lock(jobs_mu_);
        for (const JobRow& j : store->jobs("pending")) unindexed_.insert(j.id);
    }
    ~Impl() { stop_ingest(); }

    HttpResponse handle(const HttpRequest& req) {
        auto t0 = std::chrono::steady_clock::now();
        std::string route = "unmatched";
        HttpResponse resp;
        try {
            resp = dispatch(req, &route);
        } catch (const ApiError& e) {
            resp = error_response(e.status, e.message, e.code);
        } catch (const Error& e) {
            resp = error_response(status_of(e), e.what());
        } catch (const json::exception& e) {
            resp = error_response(400, std::string("bad JSON value: ") + e.what(), "invalid_json");
        } catch (const std::bad_alloc&) {
            resp = error_response(503, "out of memory", "out_of_memory");
        } catch (const std::exception& e) {
            resp = error_response(500, std::string("internal error: ") + e.what());
        }
        if (resp.stream) {
            // Latency of a stream is to its end: recorded when the producer is done.
            auto rec = std::make_shared<RecordWhenDone>(&metrics_, route, resp.status, t0);
            resp.stream = [inner = std::move(resp.stream), rec](BodyWriter& w) { inner(w); };
        } else {
            double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            metrics_.record(route, resp.status, secs);
        }
        return resp;
    }

    RequestPolicy policy(const HttpRequest& head) const {
        RequestPolicy p;
        p.max_body_bytes = sc_.max_body_bytes;
        if (head.method == "GET" && head.path == "/health") p.run_inline = true;
        // Uploads go to disk as they arrive, under their own (larger) limit; everything
        // else is JSON, small, in memory.
        if (head.method == "POST" && head.path == "/v1/documents" &&
            (head.query.count("filename") || is_multipart(head))) {
            p.max_body_bytes = sc_.max_upload_bytes;
            p.spool_body = true;
        }
        return p;
    }

    std::string spool_dir() const {
        return (fs::path(sc_.data_dir) / "uploads" / ".incoming").string();
    }

    // ---- ingestion runner ----
    void start_ingest() {
        ingest_thread_ = std::thread([this] { ingest_loop(); });
        if (indexes_->needs_reembed()) reembed_thread_ = std::thread([this] { reembed_loop(); });
    }
    void notify_ingest() {
        std::lock_guard lock(wake_mu_);
        wake_ = true;
        wake_cv_.notify_one();
    }
    void stop_ingest() {
        {
            std::lock_guard lock(wake_mu_);
            stop_.store(true);
        }
        wake_cv_.notify_one();
        if (ingest_thread_.joinable()) ingest_thread_.join();
        if (reembed_thread_.joinable()) reembed_thread_.join();  // it polls stop_
    }

    using Handler = HttpResponse (Impl::*)(const HttpRequest&, const std::string& id);
    struct Route {
        const char* method;
        const char* pattern;  // "{id}" matches one path segment
        Handler fn;
    };

    static bool match(const std::string& pattern, const std::string& path, std::string* id) {
        size_t brace = pattern.find("{id}");
        if (brace == std::string::npos) return pattern == path;
        if (path.size() <= brace || path.compare(0, brace, pattern, 0, brace) != 0) return false;
        std::string rest = path.substr(brace);
        if (rest.empty() || rest.find('/') != std::string::npos) return false;
        *id = rest;
        return true;
    }

    HttpResponse dispatch(const HttpRequest& req, std::string* route_label) {
        static const Route kRoutes[] = {
            {"GET", "/health", &Impl::health},
            {"GET", "/metrics", &Impl::metrics},
            {"POST", "/v1/search", &Impl::search_route},
            {"POST", "/v1/ask", &Impl::ask_route},
            {"POST", "/v1/documents", &Impl::add_document},
            {"GET", "/v1/documents", &Impl::list_documents},
            {"GET", "/v1/documents/{id}", &Impl::get_document},
            {"DELETE", "/v1/documents/{id}", &Impl::delete_document},
            {"GET", "/v1/jobs", &Impl::list_jobs},
            {"GET", "/v1/jobs/{id}", &Impl::get_job},
            {"POST", "/v1/chat/completions", &Impl::chat_completions},
            {"POST", "/v1/completions", &Impl::completions},
            {"POST", "/v1/embeddings", &Impl::embeddings},
            {"POST", "/v1/extract", &Impl::extract},
            {"GET", "/v1/models", &Impl::models},
        };
        // DNS-rebinding defence: a page on evil.example resolving to 127.0.0.1 sends
        // Host: evil.example, which a loopback-bound server refuses.
        if (sc_.host_check && is_loopback_host(sc_.host) && !host_allowed(req.header("host")))
            throw ApiError{
                421, "Host header '" + req.header("host") + "' is not this server (loopback only)",
                "invalid_host"};
        const Route* found = nullptr;
        std::string id, allow;
        for (const Route& r : kRoutes) {
            std::string this_id;
            if (!match(r.pattern, req.path, &this_id)) continue;
            *route_label = r.pattern;
            if (req.method == r.method) {
                found = &r;
                id = this_id;
                break;
            }
            allow += allow.empty() ? r.method : std::string(", ") + r.method;
        }
        if (req.path != "/health" && !sc_.api_key.empty()) {
            std::string auth = req.header("authorization");
            const std::string prefix = "Bearer ";
            bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                      same_secret(auth.substr(prefix.size()), sc_.api_key);
            if (!ok) {
                HttpResponse r = error_response(
                    401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                    "invalid_api_key");
                r.headers.push_back({"WWW-Authenticate", "Bearer"});
                return r;
            }
        }
        if (!found) {
            if (allow.empty())
                throw ApiError{404, "no route " + req.method + " " + req.path, "no_route"};
            HttpResponse r = error_response(405, "method " + req.method + " is not allowed on " +
                                                     req.path + " (allowed: " + allow + ")");
            r.headers.push_back({"Allow", allow});
            return r;
        }
        return (this->*(found->fn))(req, id);
    }

    bool host_allowed(const std::string& host) const {
        if (host.empty()) return false;
        std::string name = host, port;
        if (host[0] == '[') {
            size_t close = host.find(']');
            if (close == std::string::npos) return false;
            name = host.substr(0, close + 1);
            if (close + 1 < host.size()) {
                if (host[close + 1] != ':') return false;
                port = host.substr(close + 2);
            }
        } else if (size_t colon = host.find(':'); colon != std::string::npos) {
            name = host.substr(0, colon);
            port = host.substr(colon + 1);
        }
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (name != "127.0.0.1" && name != "localhost" && name != "[::1]") return false;
        return port.empty() || port == std::to_string(port_.load());
    }

    // ---- routes: health, metrics, search, ask ----

    HttpResponse health(const HttpRequest&, const std::string&) {
        return json_response(200, {{"status", "ok"}});
    }

    HttpResponse metrics(const HttpRequest&, const std::string&) {
        StoreCounts c = stores_.take()->counts();
        HttpServer::Stats t;
        {
            std::lock_guard lock(transport_mu_);
            if (transport_stats_) t = transport_stats_();
        }
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics_.render(c, t, sc_.generator != nullptr);
        r.body +=
            "# HELP ragd_embed_seconds_total Time spent embedding chunks for the vector "
            "index.\n# TYPE ragd_embed_seconds_total counter\nragd_embed_seconds_total " +
            std::to_string(indexes_->embed_seconds()) +
            "\n# HELP ragd_reembed_in_progress 1 while the vectors are re-embedded with "
            "a new embedder.\n# TYPE ragd_reembed_in_progress gauge\n"
            "ragd_reembed_in_progress " +
            std::to_string(indexes_->needs_reembed() ? 1 : 0) + "\n";
        return r;
    }

    SearchRequest search_request(const json& body, const char* text_key) {
        SearchRequest sr;
        std::optional<std::string> q = opt_string(body, text_key);
        if (!q || blank(*q))
            throw ApiError{400, std::string("'") + text_key + "' must be a non-empty string",
                           "invalid_type"};
        sr.query = *q;
        sr.k = static_cast<int>(opt_int(body, "k", 5, 1, sc_.max_k));
        sr.mode = parse_search_mode(opt_string(body, "mode").value_or("hybrid"));
        sr.filter.collection = opt_string(body, "collection").value_or("");
        sr.filter.document_id = opt_int(body, "document_id", 0, 1, INT64_MAX);
        return sr;
    }

    HttpResponse search_route(const HttpRequest& req, const std::string&) {
        SearchRequest sr = search_request(parse_object(req), "query");
        auto store = stores_.take();
        std::vector<Hit> hits = search(*indexes_, *store, sr, cfg_, reranker_.get());
        json arr = json::array();
        for (const Hit& h : hits) arr.push_back(hit_json(h));
        HttpResponse r = json_response(200, arr);
        // Vector search off during a switch from an embedder that cannot be loaded.
        if (std::string note = indexes_->vector_note(); !note.empty())
            r.headers.push_back({"X-Ragd-Note", note});
        return r;
    }

    // Retrieval happens before anything is sent, so a bad request or a failing search is
    // a proper error status even with stream: true. Without a model the extractive answer
    // is computed too and only its sending is streamed; with one, generation runs in the
    // producer and its pieces go out as they come.
    HttpResponse ask_route(const HttpRequest& req, const std::string&) {
        json body = parse_object(req);
        SearchRequest sr = search_request(body, "question");
        GenerationParams params = generation_params(req, body);  // validated with or without model
        bool stream = opt_bool(body, "stream", false);
        std::vector<Passage> passages;
        {
            auto store = stores_.take();
            std::vector<Hit> hits = search(*indexes_, *store, sr, cfg_, reranker_.get());
            passages = assemble_context(hits, cfg_.context_tokens);
        }
        if (sc_.generator) return generated_answer(sr.query, std::move(passages), params, stream);
        Answer answer = extractive_answer(sr.query, passages);
        json cites = citations_json(answer);
        if (!stream)
            return json_response(
                200, {{"answer", answer.text}, {"citations", cites}, {"mode", "extractive"}});
        return sse_response(
            [pieces = answer_pieces(answer), cites = std::move(cites)](BodyWriter& w) {
                for (const std::string& p : pieces)
                    if (!w.write(sse({{"delta", p}}))) return;
                if (!w.write(sse({{"citations", cites}, {"mode", "extractive"}}))) return;
                w.write(kSseDone);
            });
    }

    static json citations_json(const Answer& a) {
        json cites = json::array();
        for (const Citation& c : a.citations) cites.push_back(citation_json(c));
        return cites;
    }

    // /v1/ask with a model: the same shapes with mode "generated"; streamed, one delta per
    // generated piece.
    HttpResponse generated_answer(const std::string& question, std::vector<Passage> passages,
                                  const GenerationParams& params, bool stream) {
        Generator& gen = *sc_.generator;
        if (!stream) {
            Generation stats;
            Answer a = gen.answer(question, passages, params, nullptr, &stats);
            metrics_.add_tokens(stats.completion_tokens);
            return json_response(
                200, {{"answer", a.text}, {"citations", citations_json(a)}, {"mode", "generated"}});
        }
        return sse_response(
            [this, &gen, question, passages = std::move(passages), params](BodyWriter& w) {
                try {
                    Generation stats;
                    Answer a = gen.answer(
                        question, passages, params,
                        [&](std::string_view piece) {
                            return w.write(sse({{"delta", std::string(piece)}}));
                        },
                        &stats);
                    metrics_.add_tokens(stats.completion_tokens);
                    if (w.cancelled()) return;
                    if (!w.write(sse({{"citations", citations_json(a)}, {"mode", "generated"}})))
                        return;
                    w.write(kSseDone);
                } catch (const Error& e) {
                    w.write(sse(error_json(status_of(e), e.what(), "")));
                }
            });
    }

    // ---- routes: documents and jobs ----

    HttpResponse add_document(const HttpRequest& req, const std::string&) {
        if (req.query.count("filename")) return upload_raw(req);
        if (is_multipart(req)) return upload_multipart(req);
        json body = parse_object(req);
        std::optional<std::string> path = opt_string(body, "path");
        if (!path || path->empty())
            throw ApiError{400,
                           "send {\"path\": ...}, the raw file with ?filename=NAME, or a "
                           "multipart/form-data upload",
                           "invalid_type"};
        std::string collection = opt_string(body, "collection").value_or("");
        if (roots_.empty())
            throw ApiError{403,
                           "adding files by path is disabled: no allowed_roots are "
                           "configured",
                           "path_not_allowed"};
        std::error_code ec;
        fs::path abs = fs::absolute(*path, ec).lexically_normal();
        fs::path real = fs::canonical(abs, ec);
        if (ec) {
            // Say "not found" only inside the roots: outside, existence is not disclosed.
            for (const std::string& root : roots_)
                if (is_under(abs.string(), root))
                    throw ApiError{404, *path + ": no such file", "file_not_found"};
            throw ApiError{403, *path + " is outside the allowed roots", "path_not_allowed"};
        }
        bool allowed = std::any_of(roots_.begin(), roots_.end(), [&](const std::string& r) {
            return is_under(real.string(), r);
        });
        if (!allowed)
            throw ApiError{403, *path + " is outside the allowed roots", "path_not_allowed"};
        if (!fs::is_regular_file(real, ec))
            throw ApiError{400, *path + " is not a regular file (folders are not supported yet)",
                           "not_a_file"};
        return json_response(202, enqueue(real.string(), collection, std::nullopt));
    }

    static std::string checked_collection(const std::string& c) {
        if (!valid_utf8(c))
            throw ApiError{400, "collection is not valid UTF-8", "invalid_collection"};
        return c;
    }

    HttpResponse upload_raw(const HttpRequest& req) {
        std::string name = sanitize_filename(req.query.at("filename"));
        std::string collection =
            checked_collection(req.query.count("collection") ? req.query.at("collection") : "");
        UploadBody body(req);
        if (body.view().empty()) throw ApiError{400, "the uploaded file is empty", "empty_file"};
        // The spool file is exactly the upload: moved into place, never copied.
        return json_response(202,
                             store_and_enqueue(name, collection, body.view(), body.spool_path()));
    }

    HttpResponse upload_multipart(const HttpRequest& req) {
        std::string boundary = multipart_boundary(req.header("content-type"));
        if (boundary.empty())
            throw ApiError{400,
                           "multipart uploads need Content-Type: multipart/form-data with a "
                           "boundary parameter",
                           "invalid_multipart"};
        UploadBody body(req);
        std::vector<MultipartPart> parts;
        try {
            parts = parse_multipart(body.view(), boundary);
        } catch (const Error& e) {
            throw ApiError{400, e.what(), "invalid_multipart"};
        }
        std::string collection =
            checked_collection(req.query.count("collection") ? req.query.at("collection") : "");
        struct File {
            std::string name;
            std::string_view data;
        };
        std::vector<File> files;
        // Everything is checked before anything is stored: one bad file refuses the lot.
        for (const MultipartPart& p : parts) {
            if (!p.is_file) {
                if (p.name == "collection") collection = checked_collection(std::string(p.data));
                continue;  // other form fields are ignored
            }
            std::string name = sanitize_filename(p.filename);
            if (p.data.empty())
                throw ApiError{400, "the uploaded file '" + name + "' is empty", "empty_file"};
            files.push_back({name, p.data});
        }
        if (files.empty())
            throw ApiError{400, "the multipart body holds no file (a part with a filename)",
                           "no_file"};
        if (files.size() > kMaxUploadFiles)
            throw ApiError{
                400, "at most " + std::to_string(kMaxUploadFiles) + " files per upload request",
                "too_many_files"};
        json out = json::object();
        json list = json::array();
        for (const File& f : files) {
            json one = store_and_enqueue(f.name, collection, f.data, "");
            one["filename"] = f.name;
            if (list.empty())
                for (const char* k : {"document_id", "job_id", "path"}) out[k] = one[k];
            list.push_back(std::move(one));
        }
        out["files"] = std::move(list);
        return json_response(202, out);
    }

    // Stores DATA as DATA_DIR/uploads/<sha256>/<name> (the name stays readable in
    // citations, and the same bytes under the same name land on the same path), by
    // renaming SPOOL when it holds exactly DATA, else by writing a temporary file and
    // renaming it. Then queues the ingestion job.
    json store_and_enqueue(const std::string& name, const std::string& collection,
                           std::string_view data, const std::string& spool) {
        std::string hash = sha256_of(data);
        fs::path dir = fs::path(cfg_.data_dir) / "uploads" / hash;
        fs::path file = dir / name;
        std::error_code ec;
        if (!fs::exists(file, ec)) {
            fs::create_directories(dir, ec);
            if (ec)
                throw Error(Error::Code::IO, "cannot create " + dir.string() + ": " + ec.message());
            bool moved = false;
            if (!spool.empty()) {
                fs::rename(spool, file, ec);
                moved = !ec;
            }
            if (!moved) {
                fs::path tmp = dir / ("." + name + ".part");
                {
                    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
                    out.write(data.data(), static_cast<std::streamsize>(data.size()));
                    out.close();
                    if (!out) {
                        fs::remove(tmp, ec);
                        throw Error(Error::Code::IO, "cannot write the upload to " + dir.string());
                    }
                }
                fs::rename(tmp, file, ec);
                if (ec) throw Error(Error::Code::IO, "cannot store the upload: " + ec.message());
            }
        }
        std::optional<int64_t> existing;
        if (auto d = stores_.take()->document_by_hash(hash)) existing = d->id;
        return enqueue(fs::absolute(file).string(), collection, existing);
    }

    json enqueue(const std::string& path, const std::string& collection,
                 std::optional<int64_t> existing) {
        auto store = stores_.take();
        int64_t job_id;
        {
            // Registered before a worker can finish it, so "indexed" is never true early.
            std::lock_guard lock(jobs_mu_);
            job_id = store->enqueue_job(path, collection);
            unindexed_.insert(job_id);
        }
        notify_ingest();
        return {{"document_id", existing ? json(*existing) : json(nullptr)},
                {"job_id", job_id},
                {"path", path}};
    }

    HttpResponse list_documents(const HttpRequest&, const std::string&) {
        json arr = json::array();
        for (const DocumentRow& d : stores_.take()->documents()) arr.push_back(document_json(d));
        return json_response(200, arr);
    }

    HttpResponse get_document(const HttpRequest&, const std::string& id_str) {
        int64_t id = parse_id(id_str, "document");
        auto d = stores_.take()->document(id);
        if (!d) throw ApiError{404, "no document " + id_str, "document_not_found"};
        return json_response(200, document_json(*d));
    }

    // The 200 is sent after the indexes are synced: a search that starts after it never
    // sees the document (and one that overlaps drops chunks missing from SQLite).
    HttpResponse delete_document(const HttpRequest&, const std::string& id_str) {
        int64_t id = parse_id(id_str, "document");
        auto store = stores_.take();
        auto d = store->document(id);
        if (!d || !store->remove_document(id))
            throw ApiError{404, "no document " + id_str, "document_not_found"};
        {
            std::lock_guard lock(sync_mu_);
            indexes_->sync(*store);
        }
        // An uploaded file is ours: remove it (and its hash folder) with the document.
        fs::path uploads = fs::absolute(fs::path(cfg_.data_dir) / "uploads").lexically_normal();
        if (is_under(d->path, uploads.string())) {
            std::error_code ec;
            fs::remove(d->path, ec);
            fs::remove(fs::path(d->path).parent_path(), ec);  // only if now empty
        }
        return json_response(200, {{"deleted", true}, {"document", document_json(*d)}});
    }

    HttpResponse get_job(const HttpRequest&, const std::string& id_str) {
        if (id_str.rfind("reembed-", 0) == 0) {
            std::lock_guard lock(reembed_mu_);
            if (reembed_job_.is_null() || reembed_job_["id"] != id_str)
                throw ApiError{404, "no job " + id_str, "job_not_found"};
            return json_response(200, reembed_job_);
        }
        int64_t id = parse_id(id_str, "job");
        auto j = stores_.take()->job(id);
        if (!j) throw ApiError{404, "no job " + id_str, "job_not_found"};
        json out = job_json(*j);
        bool pending_index;
        {
            std::lock_guard lock(jobs_mu_);
            pending_index = unindexed_.count(id) > 0;
        }
        // True once the job's document is visible to search (done and indexes synced).
        out["indexed"] = j->state == "done" && !pending_index;
        return json_response(200, out);
    }

    // GET /v1/jobs[?state=pending|running|done|failed]: the re-embed job of this process
    // (kind "reembed", first) and the ingestion jobs (kind "ingest"), newest first.
    HttpResponse list_jobs(const HttpRequest& req, const std::string&) {
        std::string state;
        if (auto it = req.query.find("state"); it != req.query.end()) state = it->second;
        if (!state.empty() && state != "pending" && state != "running" && state != "done" &&
            state != "failed")
            throw ApiError{400, "'state' must be pending, running, done or failed", "invalid_type"};
        json data = json::array();
        {
            std::lock_guard lock(reembed_mu_);
            if (!reembed_job_.is_null() && (state.empty() || reembed_job_["state"] == state))
                data.push_back(reembed_job_);
        }
        std::vector<JobRow> jobs = stores_.take()->jobs(state);
        std::sort(jobs.begin(), jobs.end(),
                  [](const JobRow& a, const JobRow& b) { return a.id > b.id; });
        for (const JobRow& j : jobs) {
            json o = job_json(j);
            o["kind"] = "ingest";
            data.push_back(std::move(o));
        }
        return json_response(200, {{"object", "list"}, {"data", std::move(data)}});
    }

    // ---- re-embedding (an embedder switch) ----
    //
    // One background job per process; its state is in memory (GET /v1/jobs/reembed-N).
    // Killed midway, the next start begins a new one (vectors.faiss is untouched until the
    // finished index is renamed over it).
    void reembed_loop() {
        const std::string from = indexes_->serving_embedder();
        {
            std::lock_guard lock(reembed_mu_);
            reembed_job_ = {{"id", "reembed-" + std::to_string(std::time(nullptr))},
                            {"object", "job"},
                            {"kind", "reembed"},
                            {"state", "running"},
                            {"from_embedder", from.empty() ? json(nullptr) : json(from)},
                            {"to_embedder", embedder_->name()},
                            {"progress", {{"done", 0}, {"total", 0}}},
                            {"error", nullptr},
                            {"created_at", std::time(nullptr)},
                            {"updated_at", std::time(nullptr)}};
        }
        std::fprintf(stderr, "ragd: re-embedding the chunks with %s in the background\n",
                     embedder_->name().c_str());
        auto update = [&](const char* state, const std::string& error) {
            std::lock_guard lock(reembed_mu_);
            reembed_job_["state"] = state;
            if (!error.empty()) reembed_job_["error"] = error;
            reembed_job_["updated_at"] = std::time(nullptr);
        };
        try {
            Store store(cfg_.data_dir);
            bool done = indexes_->reembed(
                store,
                [&](int64_t d, int64_t total) {
                    std::lock_guard lock(reembed_mu_);
                    reembed_job_["progress"] = {{"done", d}, {"total", total}};
                    reembed_job_["updated_at"] = std::time(nullptr);
                },
                &stop_);
            if (done) {
                update("done", "");
                std::fprintf(stderr, "ragd: re-embedding done; searching %s vectors\n",
                             embedder_->name().c_str());
            } else {
                update("failed", "stopped by shutdown (starts over at the next start)");
            }
        } catch (const std::exception& e) {
            update("failed", e.what());
            std::fprintf(stderr, "ragd: re-embedding failed: %s\n", e.what());
        }
    }

    // ---- routes: the model (OpenAI shapes) ----
    //
    // Each validates its request completely first (400 for a bad one, model or not), then
    // answers 503 model_not_loaded while sc_.generator is null.

    Generator& model() {
        if (!sc_.generator)
            throw ApiError{503,
                           "no model loaded: generation and embeddings need a GGUF model "
                           "(ragd serve -m MODEL.gguf), which this version cannot load yet",
                           "model_not_loaded"};
        return *sc_.generator;
    }

    std::string model_name() const {
        return sc_.generator ? sc_.generator->model_id() : std::string("none");
    }

    // b is req's body, parsed.
    GenerationParams generation_params(const HttpRequest& req, const json& b) {
        GenerationParams p;
        p.max_tokens = static_cast<int>(opt_int(b, "max_tokens",
                                                std::min(kDefaultMaxTokens, sc_.max_tokens_limit),
                                                1, sc_.max_tokens_limit));
        // The newer name of the same limit (chat) wins when both are sent.
        p.max_tokens = static_cast<int>(
            opt_int(b, "max_completion_tokens", p.max_tokens, 1, sc_.max_tokens_limit));
        p.temperature = opt_number(b, "temperature", p.temperature, 0, 2);
        p.top_p = opt_number(b, "top_p", p.top_p, 0, 1);
        p.top_k = static_cast<int>(opt_int(b, "top_k", p.top_k, 0, 100000));
        p.min_p = opt_number(b, "min_p", p.min_p, 0, 1);
        p.repeat_penalty = opt_number(b, "repeat_penalty", p.repeat_penalty, 0, 10);
        p.presence_penalty = opt_number(b, "presence_penalty", 0, -2, 2);
        p.frequency_penalty = opt_number(b, "frequency_penalty", 0, -2, 2);
        if (b.contains("seed") && !b.at("seed").is_null()) {
            const json& seed = b.at("seed");
            if (!seed.is_number_integer()) throw type_error("seed", "an integer");
            p.seed = seed.is_number_unsigned() ? seed.get<uint64_t>()
                                               : static_cast<uint64_t>(seed.get<int64_t>());
        }
        opt_int(b, "n", 1, 1, 1);  // one choice per request
        if (auto it = b.find("stop"); it != b.end() && !it->is_null()) {
            if (it->is_string()) {
                p.stop.push_back(it->get<std::string>());
            } else if (it->is_array() && it->size() <= 4) {
                for (const json& s : *it) {
                    if (!s.is_string()) throw type_error("stop", "a string or up to 4 strings");
                    p.stop.push_back(s.get<std::string>());
                }
            } else {
                throw type_error("stop", "a string or up to 4 strings");
            }
            for (const std::string& s : p.stop)
                if (s.empty())
                    throw ApiError{400, "'stop' strings must not be empty", "invalid_type"};
        }
        if (auto it = b.find("response_format"); it != b.end() && !it->is_null()) {
            if (!it->is_object()) throw type_error("response_format", "an object");
            std::string type = opt_string(*it, "type").value_or("");
            if (type != "text" && type != "json_object" && type != "json_schema")
                throw ApiError{400,
                               "'response_format.type' must be \"text\", \"json_object\" or "
                               "\"json_schema\"",
                               "invalid_type"};
            p.response_format = type;
            if (type == "json_schema") {
                auto js = it->find("json_schema");
                if (js == it->end() || !js->is_object() || !js->contains("schema") ||
                    !(*js)["schema"].is_object())
                    throw ApiError{400,
                                   "'response_format.json_schema.schema' must be a JSON "
                                   "Schema object",
                                   "invalid_type"};
                const nlohmann::ordered_json schema =
                    ordered_member(req, {"response_format", "json_schema", "schema"});
                p.json_schema = schema.dump();
                try {  // a bad schema is a 400 before anything is generated or streamed
                    compile_json_schema(schema);
                } catch (const Error& e) {
                    throw ApiError{400, e.what(), "invalid_schema"};
                }
            }
        }
        return p;
    }

    static std::string message_text(const json& content) {
        if (content.is_null()) return "";  // an assistant turn that only called tools
        if (content.is_string()) return content.get<std::string>();
        if (!content.is_array())
            throw type_error("messages[].content", "a string or an array of text parts");
        std::string text;
        for (const json& part : content) {
            if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
                !part["text"].is_string())
                throw ApiError{400,
                               "only text content parts ({\"type\": \"text\", ...}) are supported",
                               "unsupported_content"};
            if (!text.empty()) text += "\n";
            text += part["text"].get<std::string>();
        }
        return text;
    }

    // A streamed OpenAI response: chunks from make_chunk(piece), then a last chunk with
    // the finish reason, then [DONE]. An error after the header is an error event.
    template <class Generate, class Chunk>
    HttpResponse openai_stream(Generate generate, Chunk make_chunk) {
        return sse_response([this, generate, make_chunk](BodyWriter& w) {
            try {
                if (!w.write(sse(make_chunk("", nullptr, true)))) return;
                Generation g = generate([&](std::string_view piece) {
                    return w.write(sse(make_chunk(std::string(piece), nullptr, false)));
                });
                metrics_.add_tokens(g.completion_tokens);
                if (w.cancelled()) return;
                if (!w.write(sse(make_chunk("", g.finish_reason, false)))) return;
                w.write(kSseDone);
            } catch (const Error& e) {
                w.write(sse(error_json(status_of(e), e.what(), "")));
            }
        });
    }

    HttpResponse chat_completions(const HttpRequest& req, const std::string&) {
        json b = parse_object(req);
        opt_string(b, "model");  // any model name is accepted: the loaded one answers
        auto it = b.find("messages");
        if (it == b.end() || !it->is_array() || it->empty())
            throw type_error("messages", "a non-empty array of {role, content}");
        if (it->size() > kMaxChatMessages) throw ApiError{400, "too many messages", "out_of_range"};
        std::vector<ChatMessage> messages;
        for (const json& m : *it) {
            if (!m.is_object()) throw type_error("messages[]", "an object {role, content}");
            std::string role = opt_string(m, "role").value_or("");
            if (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
                role != "developer")
                throw ApiError{400,
                               "'messages[].role' must be system, developer, user, assistant "
                               "or tool",
                               "invalid_type"};
            if (!m.contains("content")) throw type_error("messages[].content", "present");
            messages.push_back({role == "developer" ? "system" : role, message_text(m["content"])});
        }
        GenerationParams params = generation_params(req, b);
        bool stream = opt_bool(b, "stream", false);
        Generator& gen = model();
        std::string id = new_id("chatcmpl");
        int64_t created = static_cast<int64_t>(std::time(nullptr));
        std::string name = gen.model_id();
        if (!stream) {
            Generation g = gen.chat(messages, params, nullptr);
            metrics_.add_tokens(g.completion_tokens);
            return json_response(
                200, {{"id", id},
                      {"object", "chat.completion"},
                      {"created", created},
                      {"model", name},
                      {"choices",
                       json::array({json{{"index", 0},
                                         {"message", {{"role", "assistant"}, {"content", g.text}}},
                                         {"finish_reason", g.finish_reason}}})},
                      {"usage", usage(g)}});
        }
        return openai_stream(
            [&gen, messages, params](const TokenSink& sink) {
                return gen.chat(messages, params, sink);
            },
            [id, created, name](const std::string& piece, json finish, bool first) {
                json delta = json::object();
                if (first)
                    delta = {{"role", "assistant"}, {"content", ""}};
                else if (!piece.empty())
                    delta = {{"content", piece}};
                return json{
                    {"id", id},
                    {"object", "chat.completion.chunk"},
                    {"created", created},
                    {"model", name},
                    {"choices", json::array({json{
                                    {"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
            });
    }

    HttpResponse completions(const HttpRequest& req, const std::string&) {
        json b = parse_object(req);
        opt_string(b, "model");
        auto it = b.find("prompt");
        std::string prompt;
        if (it != b.end() && it->is_string())
            prompt = it->get<std::string>();
        else if (it != b.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string())
            prompt = (*it)[0].get<std::string>();
        else
            throw type_error("prompt", "a string (one prompt per request)");
        GenerationParams params = generation_params(req, b);
        bool stream = opt_bool(b, "stream", false);
        Generator& gen = model();
        std::string id = new_id("cmpl");
        int64_t created = static_cast<int64_t>(std::time(nullptr));
        std::string name = gen.model_id();
        auto choice = [](const std::string& text, json finish) {
            return json{
                {"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}};
        };
        if (!stream) {
            Generation g = gen.complete(prompt, params, nullptr);
            metrics_.add_tokens(g.completion_tokens);
            return json_response(200, {{"id", id},
                                       {"object", "text_completion"},
                                       {"created", created},
                                       {"model", name},
                                       {"choices", json::array({choice(g.text, g.finish_reason)})},
                                       {"usage", usage(g)}});
        }
        return openai_stream(
            [&gen, prompt, params](const TokenSink& sink) {
                return gen.complete(prompt, params, sink);
            },
            [id, created, name, choice](const std::string& piece, json finish, bool) {
                return json{{"id", id},
                            {"object", "text_completion"},
                            {"created", created},
                            {"model", name},
                            {"choices", json::array({choice(piece, finish)})}};
            });
    }

    static json usage(const Generation& g) {
        return {{"prompt_tokens", g.prompt_tokens},
                {"completion_tokens", g.completion_tokens},
                {"total_tokens", g.prompt_tokens + g.completion_tokens}};
    }

    HttpResponse embeddings(const HttpRequest& req, const std::string&) {
        json b = parse_object(req);
        opt_string(b, "model");
        std::vector<std::string> inputs;
        auto it = b.find("input");
        if (it != b.end() && it->is_string()) {
            inputs.push_back(it->get<std::string>());
        } else if (it != b.end() && it->is_array() && !it->empty()) {
            for (const json& s : *it) {
                if (!s.is_string())
                    throw type_error("input",
                                     "a string or an array of strings (token ids are "
                                     "not supported)");
                inputs.push_back(s.get<std::string>());
            }
        } else {
            throw type_error("input", "a string or a non-empty array of strings");
        }
        if (inputs.size() > kMaxEmbedInputs)
            throw ApiError{400,
                           "at most " + std::to_string(kMaxEmbedInputs) + " inputs per request",
                           "out_of_range"};
        for (const std::string& s : inputs)
            if (s.empty()) throw ApiError{400, "'input' strings must not be empty", "invalid_type"};
        std::string format = opt_string(b, "encoding_format").value_or("float");
        if (format != "float" && format != "base64")
            throw ApiError{400, "'encoding_format' must be \"float\" or \"base64\"",
                           "invalid_type"};
        if (b.contains("dimensions") && !b["dimensions"].is_null())
            throw ApiError{400, "'dimensions' is not supported: the model's own size is used",
                           "unsupported_parameter"};
        // The embedding model when one is configured; else the language model's own.
        int64_t prompt_tokens = 0;
        std::vector<std::vector<float>> vecs;
        std::string model_id;
        if (gguf_embedder_) {
            const int d = gguf_embedder_->dim();
            std::vector<float> flat(inputs.size() * size_t(d));
            gguf_embedder_->embed_counted(inputs, flat.data(), &prompt_tokens);
            for (size_t i = 0; i < inputs.size(); ++i)
                vecs.emplace_back(flat.begin() + std::ptrdiff_t(i * size_t(d)),
                                  flat.begin() + std::ptrdiff_t((i + 1) * size_t(d)));
            model_id = gguf_embedder_->model_name();
        } else {
            Generator& gen = model();
            int tokens = 0;
            try {
                vecs = gen.embed(inputs, &tokens);
            } catch (const Error& e) {
                if (e.code() == Error::Code::Unsupported)
                    throw ApiError{400, e.what(), "model_cannot_embed"};
                throw;
            }
            prompt_tokens = tokens;
            model_id = gen.model_id();
        }
        json data = json::array();
        for (size_t i = 0; i < vecs.size(); ++i) {
            json emb;
            if (format == "base64")  // little-endian float32, as OpenAI sends it
                emb = base64(reinterpret_cast<const unsigned char*>(vecs[i].data()),
                             vecs[i].size() * sizeof(float));
            else
                emb = vecs[i];
            data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(emb)}});
        }
        return json_response(
            200, {{"object", "list"},
                  {"data", std::move(data)},
                  {"model", model_id},
                  {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}});
    }

    HttpResponse extract(const HttpRequest& req, const std::string&) {
        json b = parse_object(req);
        bool has_doc = b.contains("document_id") && !b["document_id"].is_null();
        if (has_doc) opt_int(b, "document_id", 0, 1, INT64_MAX);
        std::optional<std::string> text = opt_string(b, "text");
        if (has_doc == text.has_value())
            throw ApiError{400, "send exactly one of 'document_id' and 'text'", "invalid_type"};
        if (!b.contains("schema") || !b["schema"].is_object())
            throw type_error("schema", "a JSON Schema object");
        std::string instructions = opt_string(b, "instructions").value_or("");
        if (instructions.size() > 16384)
            throw ApiError{400, "'instructions' is longer than 16384 bytes", "invalid_type"};
        const nlohmann::ordered_json schema = ordered_member(req, {"schema"});
        try {
            compile_json_schema(schema);
        } catch (const Error& e) {
            throw ApiError{400, e.what(), "invalid_schema"};
        }
        GenerationParams p = generation_params(req, b);
        if (!b.contains("temperature")) p.temperature = 0;  // extraction: greedy by default
        p.stop.clear();
        p.response_format = "json_schema";
        p.json_schema = schema.dump();
        Generator& gen = model();
        std::vector<Passage> passages;
        const int budget = cfg_.context_tokens;
        if (has_doc) {
            const int64_t id = b["document_id"].get<int64_t>();
            auto store = stores_.take();
            if (!store->document(id))
                throw ApiError{404, "no document with id " + std::to_string(id), "not_found"};
            passages = document_passages(*indexes_, *store, id, schema, instructions, cfg_, budget);
        } else {
            passages = text_passages(*text, budget);
        }
        Generation g = gen.chat(extraction_messages(schema, instructions, passages), p, nullptr);
        metrics_.add_tokens(g.completion_tokens);
        json data;
        try {
            data = json::parse(g.text);
        } catch (const std::exception&) {
            throw ApiError{500, "the model's output was not complete JSON", "generation_failed"};
        }
        json usage = {{"prompt_tokens", g.prompt_tokens},
                      {"completion_tokens", g.completion_tokens},
                      {"total_tokens", g.prompt_tokens + g.completion_tokens}};
        // data as generated, in schema order (json would sort the keys).
        HttpResponse r;
        r.status = 200;
        r.body = "{\"data\":" + g.text +
                 ",\"evidence\":" + dump(extraction_evidence(data, passages)) +
                 ",\"usage\":" + dump(usage) + "}";
        return r;
    }

    HttpResponse models(const HttpRequest&, const std::string&) {
        json data = json::array();
        if (sc_.generator)
            data.push_back({{"id", sc_.generator->model_id()},
                            {"object", "model"},
                            {"created", 0},
                            {"owned_by", "ragd"}});
        if (gguf_embedder_)  // the model behind /v1/embeddings
            data.push_back({{"id", gguf_embedder_->model_name()},
                            {"object", "model"},
                            {"created", 0},
                            {"owned_by", "ragd"}});
        return json_response(200, {{"object", "list"}, {"data", data}});
    }

    // ---- ingestion ----

    void ingest_loop() {
        std::unique_ptr<Store> store;
        while (!stop_.load()) {
            {
                // Woken by uploads; every 2 s also looks for jobs that another process
                // (`ragd ingest` while this server holds the directory) put in the queue.
                std::unique_lock lock(wake_mu_);
                wake_cv_.wait_for(lock, std::chrono::seconds(2),
                                  [&] { return wake_ || stop_.load(); });
                if (stop_.load()) break;
                wake_ = false;
            }
            try {
                if (!store) store = std::make_unique<Store>(cfg_.data_dir);
                // on_done runs serialized (ingest.h): sync after each job, so a finished job
                // is searchable right away.
                run_ingest_workers(
                    cfg_,
                    [&](const JobEvent& ev) {
                        {
                            std::lock_guard lock(sync_mu_);
                            indexes_->sync(*store);
                        }
                        std::lock_guard lock(jobs_mu_);
                        unindexed_.erase(ev.job.id);
                        if (ev.job.state == "failed")
                            std::fprintf(stderr, "ragd: job %lld failed: %s\n",
                                         static_cast<long long>(ev.job.id), ev.job.error.c_str());
                    },
                    &stop_);
                std::lock_guard lock(sync_mu_);
                indexes_->sync(*store);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "ragd: ingestion error: %s (will retry)\n", e.what());
                store.reset();
                std::unique_lock lock(wake_mu_);
                wake_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_.load(); });
                wake_ = true;
            }
        }
    }

    ServerConfig sc_;
    Config cfg_;
    std::vector<std::string> roots_;  // canonical allowed roots
    std::atomic<int> port_{0};
    StorePool stores_;
    std::shared_ptr<const Embedder> embedder_;     // the target embedder of indexes_
    const GgufEmbedder* gguf_embedder_ = nullptr;  // embedder_ when it is a model
    std::unique_ptr<Reranker> reranker_;           // null: no reranking
    std::unique_ptr<Indexes> indexes_;             // searched concurrently; one sync at a time
    std::mutex sync_mu_;                           // serializes Indexes::sync
    std::thread reembed_thread_;
    std::mutex reembed_mu_;  // guards reembed_job_
    json reembed_job_;       // null until a re-embed starts
    Metrics metrics_;

    std::mutex transport_mu_;  // guards transport_stats_
    std::function<HttpServer::Stats()> transport_stats_;

    std::mutex jobs_mu_;                     // guards unindexed_
    std::unordered_set<int64_t> unindexed_;  // jobs queued here whose result is not yet searchable

    std::thread ingest_thread_;
    std::mutex wake_mu_;  // guards wake_
    std::condition_variable wake_cv_;
    bool wake_ = false;
    std::atomic<bool> stop_{false};
};

Api::Api(ServerConfig sc, std::vector<std::string> roots)
    : impl_(std::make_unique<Impl>(std::move(sc), std::move(roots))) {}
Api::~Api() = default;

HttpResponse Api::handle(const HttpRequest& req) {
    return impl_->handle(req);
}
RequestPolicy Api::policy(const HttpRequest& head) const {
    return impl_->policy(head);
}
HttpResponse Api::error(int status, const std::string& message) {
    return error_response(status, message);
}
void Api::attach(int port, std::function<HttpServer::Stats()> stats) {
    impl_->port_.store(port);
    std::lock_guard lock(impl_->transport_mu_);
    impl_->transport_stats_ = std::move(stats);
}
void Api::record_transport_error(int status) {
    impl_->metrics_.record("transport", status, 0);
}
std::string Api::spool_dir() const {
    return impl_->spool_dir();
}
void Api::start_ingest() {
    impl_->start_ingest();
    impl_->notify_ingest();  // jobs left queued by an earlier run
}
void Api::stop_ingest() {
    impl_->stop_ingest();
}

// ---------------------------------------------------------------------------------------
// Configuration and the command
// ---------------------------------------------------------------------------------------

namespace {

int64_t int_value(const json& v, const std::string& key, int64_t lo, int64_t hi) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi)
        throw Error(Error::Code::InvalidArgument,
                    "config key '" + key + "' must be an integer from " + std::to_string(lo) +
                        " to " + std::to_string(hi));
    return v.get<int64_t>();
}

std::string string_value(const json& v, const std::string& key) {
    if (!v.is_string())
        throw Error(Error::Code::InvalidArgument, "config key '" + key + "' must be a string");
    return v.get<std::string>();
}

constexpr int64_t kMaxBodyLimit = 1ll << 40;

}  // namespace

void load_server_config_file(const std::string& file, ServerConfig* cfg) {
    std::error_code ec;
    if (!fs::exists(file, ec))
        throw Error(Error::Code::NotFound, "config file " + file + " not found");
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) throw Error(Error::Code::InvalidArgument, "cannot read config file " + file);
    json j;
    try {
        j = json::parse(ss.str());
    } catch (const json::parse_error& e) {
        throw Error(Error::Code::InvalidArgument, "config file " + file + ": " + e.what());
    }
    if (!j.is_object())
        throw Error(Error::Code::InvalidArgument,
                    "config file " + file + " must hold a JSON object");
    for (auto& [key, v] : j.items()) {
        if (key == "host")
            cfg->host = string_value(v, key);
        else if (key == "port")
            cfg->port = int(int_value(v, key, 0, 65535));
        else if (key == "api_key")
            cfg->api_key = string_value(v, key);
        else if (key == "data_dir")
            cfg->data_dir = string_value(v, key);
        else if (key == "allowed_roots") {
            if (!v.is_array())
                throw Error(Error::Code::InvalidArgument,
                            "config key 'allowed_roots' must be an array of strings");
            cfg->allowed_roots.clear();
            for (const json& r : v) cfg->allowed_roots.push_back(string_value(r, key));
        } else if (key == "threads")
            cfg->threads = int(int_value(v, key, 1, 256));
        else if (key == "handler_threads")
            cfg->handler_threads = int(int_value(v, key, 1, 1024));
        else if (key == "max_queued_requests")
            cfg->max_queued_requests = int(int_value(v, key, 0, 1000000));
        else if (key == "max_body_bytes")
            cfg->max_body_bytes = uint64_t(int_value(v, key, 1, kMaxBodyLimit));
        else if (key == "max_upload_bytes")
            cfg->max_upload_bytes = uint64_t(int_value(v, key, 1, kMaxBodyLimit));
        else if (key == "max_header_bytes")
            cfg->max_header_bytes = uint32_t(int_value(v, key, 1024, 1 << 24));
        else if (key == "read_timeout_s")
            cfg->read_timeout_s = int(int_value(v, key, 1, 3600));
        else if (key == "write_timeout_s")
            cfg->write_timeout_s = int(int_value(v, key, 1, 3600));
        else if (key == "max_connections")
            cfg->max_connections = int(int_value(v, key, 1, 1000000));
        else if (key == "max_k")
            cfg->max_k = int(int_value(v, key, 1, 1000));
        else if (key == "max_tokens_limit")
            cfg->max_tokens_limit = int(int_value(v, key, 1, 1 << 20));
        else if (key == "workers")
            cfg->workers = int(int_value(v, key, 1, 256));
        else if (key == "shutdown_grace_s")
            cfg->shutdown_grace_s = int(int_value(v, key, 0, 3600));
        else if (key == "embed_model")
            cfg->embed_model = string_value(v, key);
        else if (key == "rerank_model")
            cfg->rerank_model = string_value(v, key);
        else if (key == "rerank_top_n")
            cfg->rerank_top_n = int(int_value(v, key, 1, 1000));
        else if (key == "host_check") {
            if (!v.is_boolean())
                throw Error(Error::Code::InvalidArgument,
                            "config key 'host_check' must be true or false");
            cfg->host_check = v.get<bool>();
        } else
            throw Error(Error::Code::InvalidArgument,
                        "config file " + file + ": unknown key '" + key + "'");
    }
}

int run_serve(int argc, char** argv) {
    // ---- settings: defaults < config file < environment < flags ----
    std::map<std::string, std::string> flags;
    static const char* const kValueFlags[] = {
        "--data",         "--host",         "--port",     "--api-key",
        "--config",       "--threads",      "--max-body", "-m",
        "--model",        "--embed-model",  "-c",         "-t",
        "--rerank-model", "--rerank-top-n", "--kv-type"};
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i], value;
        if (a == "--mmap" || a == "--no-mmap") {  // how the -m model loads (gguf::Load)
            flags[a] = "1";
            continue;
        }
        size_t eq = a.find('=');
        bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
        if (inline_value) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
        }
        if (std::find_if(std::begin(kValueFlags), std::end(kValueFlags),
                         [&](const char* f) { return a == f; }) == std::end(kValueFlags))
            throw Error(Error::Code::InvalidArgument,
                        a.rfind("-", 0) == 0 ? "unknown option " + a : "unexpected argument " + a);
        if (!inline_value) {
            if (i + 1 >= argc) throw Error(Error::Code::InvalidArgument, a + " needs a value");
            value = argv[++i];
        }
        flags[a == "--model" ? "-m" : a] = value;
    }
    ServerConfig sc;
    if (flags.count("--config")) load_server_config_file(flags["--config"], &sc);
    if (const char* e = std::getenv("RAGD_DATA"); e && *e) sc.data_dir = e;
    if (const char* e = std::getenv("RAGD_API_KEY"); e && *e) sc.api_key = e;
    if (flags.count("--data")) sc.data_dir = flags["--data"];
    if (flags.count("--host")) sc.host = flags["--host"];
    if (flags.count("--port")) sc.port = int(parse_int("--port", flags["--port"], 0, 65535));
    if (flags.count("--api-key")) sc.api_key = flags["--api-key"];
    if (flags.count("--threads"))
        sc.threads = int(parse_int("--threads", flags["--threads"], 1, 256));
    if (flags.count("--max-body"))
        sc.max_body_bytes =
            uint64_t(parse_int("--max-body", flags["--max-body"], 1, kMaxBodyLimit));
    if (const char* e = std::getenv("RAGD_EMBED_MODEL"); e && *e) sc.embed_model = e;
    if (const char* e = std::getenv("RAGD_RERANK_MODEL"); e && *e) sc.rerank_model = e;
    if (flags.count("--embed-model")) sc.embed_model = flags["--embed-model"];
    if (flags.count("--rerank-model")) sc.rerank_model = flags["--rerank-model"];
    if (flags.count("--rerank-top-n"))
        sc.rerank_top_n = int(parse_int("--rerank-top-n", flags["--rerank-top-n"], 1, 1000));
    if (sc.data_dir.empty()) sc.data_dir = "./ragd-data";
    if (sc.host.empty()) throw Error(Error::Code::InvalidArgument, "--host must not be empty");

    std::vector<std::string> roots;
    for (const std::string& r : sc.allowed_roots) {
        std::error_code ec;
        fs::path c = fs::canonical(r, ec);
        if (ec || !fs::is_directory(c, ec)) {
            std::fprintf(stderr, "ragd: warning: allowed root %s is not a directory; ignored\n",
                         r.c_str());
            continue;
        }
        roots.push_back(c.string());
    }

    // SIGINT/SIGTERM are blocked in every thread (threads inherit the mask) and taken by
    // sigwait below, so no handler runs in the middle of a request.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto lock = DataDirLock::try_acquire(sc.data_dir);
    if (!lock)
        throw Error(Error::Code::Busy, "data directory " + sc.data_dir +
                                           " is in use by another ragd process (ingest or serve)");
    // The model loads after the lock is ours, so a busy data directory fails fast.
    if (flags.count("-m")) {
        int n_ctx = flags.count("-c") ? int(parse_int("-c", flags["-c"], 0, 1 << 24)) : 0;
        int n_threads = flags.count("-t") ? int(parse_int("-t", flags["-t"], 0, 1024)) : 0;
        KvType kv = flags.count("--kv-type") ? parse_kv_type(flags["--kv-type"]) : KvType::F32;
        sc.generator = load_model_generator(
            flags["-m"], n_ctx, n_threads, kv,
            gguf::load_mode(flags.count("--mmap") > 0, flags.count("--no-mmap") > 0));
        std::fprintf(stderr, "ragd: model %s loaded\n", sc.generator->model_id().c_str());
    }
    Api api(sc, roots);

    HttpOptions ho;
    ho.host = sc.host;
    ho.port = sc.port;
    ho.threads = sc.threads;
    ho.handler_threads = sc.handler_threads;
    ho.max_queued_requests = sc.max_queued_requests;
    ho.max_connections = sc.max_connections;
    ho.max_header_bytes = sc.max_header_bytes;
    ho.max_body_bytes = sc.max_body_bytes;
    ho.read_timeout_s = sc.read_timeout_s;
    ho.write_timeout_s = sc.write_timeout_s;
    ho.shutdown_grace_s = sc.shutdown_grace_s;
    ho.policy = [&api](const HttpRequest& head) { return api.policy(head); };
    ho.spool_dir = api.spool_dir();
    ho.on_transport_error = [&api](int status) { api.record_transport_error(status); };
    HttpServer http(
        ho, [&api](const HttpRequest& r) { return api.handle(r); }, &Api::error);
    // Attached before start so that a fixed port passes the Host check from the first
    // request; again after, for the real port when it was 0.
    api.attach(sc.port, [&http] { return http.stats(); });
    http.start();
    api.attach(http.port(), [&http] { return http.stats(); });
    std::string shown = sc.host.find(':') != std::string::npos ? "[" + sc.host + "]" : sc.host;
    std::fprintf(stderr, "ragd: listening on http://%s:%d\n", shown.c_str(), http.port());
    std::fflush(stderr);
    api.start_ingest();

    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "ragd: %s received, shutting down\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
    http.stop();
    api.stop_ingest();
    std::fprintf(stderr, "ragd: stopped\n");
    return 0;
}

}  // namespace ragd
