// api/server: routes, auth, Host check, metrics, the ingestion runner and `ragd serve`.
#include "api/server.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
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
#include "config/config.h"
#include "generate/generate.h"
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
        default:
            return status >= 500 ? "internal_error" : "bad_request";
    }
}

std::string dump(const json& j) {
    // Stored text is valid UTF-8 (ingestion repairs it); never throw on it anyway.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse error_response(int status, const std::string& message, std::string code = "") {
    if (code.empty()) code = default_code(status);
    HttpResponse r;
    r.status = status;
    r.body =
        dump({{"error", {{"message", message}, {"type", error_type(status)}, {"code", code}}}});
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

std::optional<std::string> opt_string(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return std::nullopt;
    if (!it->is_string())
        throw ApiError{400, std::string("'") + key + "' must be a string", "invalid_type"};
    return it->get<std::string>();
}

int64_t opt_int(const json& o, const char* key, int64_t def, int64_t lo, int64_t hi) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return def;
    if (!it->is_number_integer())
        throw ApiError{400, std::string("'") + key + "' must be an integer", "invalid_type"};
    // Unsigned values above INT64_MAX are out of range too.
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw ApiError{400,
                       std::string("'") + key + "' must be from " + std::to_string(lo) + " to " +
                           std::to_string(hi),
                       "out_of_range"};
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi)
        throw ApiError{400,
                       std::string("'") + key + "' must be from " + std::to_string(lo) + " to " +
                           std::to_string(hi) + ", got " + std::to_string(v),
                       "out_of_range"};
    return v;
}

bool opt_bool(const json& o, const char* key, bool def) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return def;
    if (!it->is_boolean())
        throw ApiError{400, std::string("'") + key + "' must be true or false", "invalid_type"};
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

// Upload names: the last path component, no control characters, no leading dot, at most
// kMaxFilenameBytes (the extension kept), valid UTF-8. Throws ApiError 400 otherwise.
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

    std::string render(const StoreCounts& c) {
        std::ostringstream o;
        std::lock_guard lock(mu_);
        o << "# HELP ragd_http_requests_total HTTP requests by route and status.\n"
             "# TYPE ragd_http_requests_total counter\n";
        for (auto& [key, n] : requests_)
            o << "ragd_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
              << "\"} " << n << "\n";
        o << "# HELP ragd_http_request_duration_seconds Time to answer a request, by route.\n"
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
        o << "# HELP ragd_documents Documents in the store.\n# TYPE ragd_documents gauge\n"
          << "ragd_documents " << c.documents << "\n"
          << "# HELP ragd_chunks Chunks in the store.\n# TYPE ragd_chunks gauge\n"
          << "ragd_chunks " << c.chunks << "\n"
          << "# HELP ragd_ingest_queue_depth Ingestion jobs pending or running.\n"
          << "# TYPE ragd_ingest_queue_depth gauge\n"
          << "ragd_ingest_queue_depth " << c.jobs_pending + c.jobs_running << "\n"
          << "# HELP ragd_ingest_jobs_failed Ingestion jobs that failed.\n"
          << "# TYPE ragd_ingest_jobs_failed gauge\n"
          << "ragd_ingest_jobs_failed " << c.jobs_failed << "\n";
        return o.str();
    }

  private:
    struct Histogram {
        std::array<uint64_t, kBuckets.size()> buckets{};  // cumulative: count with value <= le
        uint64_t count = 0;
        double sum = 0;
    };
    std::mutex mu_;  // guards everything below
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
};

// ---------------------------------------------------------------------------------------
// Store connections: one per thread at a time (store.h), reused across requests
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

// ---------------------------------------------------------------------------------------
// The service: routes and ingestion
// ---------------------------------------------------------------------------------------

class Service {
  public:
    Service(ServerConfig sc, Config cfg, std::vector<std::string> roots)
        : sc_(std::move(sc)),
          cfg_(std::move(cfg)),
          roots_(std::move(roots)),
          stores_(cfg_.data_dir) {}
    ~Service() { stop_ingest(); }
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Crash recovery, then the indexes. REQUIRES: the data directory lock is held.
    void open() {
        auto store = stores_.take();
        store->requeue_running_jobs();
        indexes_ = std::make_unique<Indexes>(
            cfg_, std::shared_ptr<const Embedder>(make_hashed_embedder()));
        indexes_->sync(*store);
        std::lock_guard lock(jobs_mu_);
        for (const JobRow& j : store->jobs("pending")) unindexed_.insert(j.id);
    }

    void set_port(int port) { port_ = port; }

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
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        metrics_.record(route, resp.status, secs);
        return resp;
    }

    void record_transport_error(int status) { metrics_.record("transport", status, 0); }

    // ---- ingestion runner ----
    void start_ingest() {
        ingest_thread_ = std::thread([this] { ingest_loop(); });
    }
    void notify_ingest() {
        std::lock_guard lock(wake_mu_);
        wake_ = true;
        wake_cv_.notify_one();
    }
    // Workers finish the job they hold; queued jobs stay in SQLite for the next start.
    void stop_ingest() {
        {
            std::lock_guard lock(wake_mu_);
            stop_.store(true);
        }
        wake_cv_.notify_one();
        if (ingest_thread_.joinable()) ingest_thread_.join();
    }

  private:
    using Handler = HttpResponse (Service::*)(const HttpRequest&, const std::string& id);
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
            {"GET", "/health", &Service::health},
            {"GET", "/metrics", &Service::metrics},
            {"POST", "/v1/search", &Service::search_route},
            {"POST", "/v1/ask", &Service::ask_route},
            {"POST", "/v1/documents", &Service::add_document},
            {"GET", "/v1/documents", &Service::list_documents},
            {"GET", "/v1/documents/{id}", &Service::get_document},
            {"DELETE", "/v1/documents/{id}", &Service::delete_document},
            {"GET", "/v1/jobs/{id}", &Service::get_job},
            {"POST", "/v1/chat/completions", &Service::no_model},
            {"POST", "/v1/completions", &Service::no_model},
            {"POST", "/v1/embeddings", &Service::no_model},
            {"POST", "/v1/extract", &Service::no_model},
            {"GET", "/v1/models", &Service::models},
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
        return port.empty() || port == std::to_string(port_);
    }

    // ---- routes ----

    HttpResponse health(const HttpRequest&, const std::string&) {
        return json_response(200, {{"status", "ok"}});
    }

    HttpResponse metrics(const HttpRequest&, const std::string&) {
        StoreCounts c = stores_.take()->counts();
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics_.render(c);
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
        std::vector<Hit> hits = search(*indexes_, *store, sr, cfg_);
        json arr = json::array();
        for (const Hit& h : hits) arr.push_back(hit_json(h));
        return json_response(200, arr);
    }

    HttpResponse ask_route(const HttpRequest& req, const std::string&) {
        json body = parse_object(req);
        SearchRequest sr = search_request(body, "question");
        if (opt_bool(body, "stream", false))
            throw ApiError{501,
                           "streaming answers (server-sent events) are not supported yet; "
                           "send stream: false",
                           "stream_not_supported"};
        auto store = stores_.take();
        std::vector<Hit> hits = search(*indexes_, *store, sr, cfg_);
        std::vector<Passage> passages = assemble_context(hits, cfg_.context_tokens);
        Answer answer = extractive_answer(sr.query, passages);
        json cites = json::array();
        for (const Citation& c : answer.citations) cites.push_back(citation_json(c));
        return json_response(
            200, {{"answer", answer.text}, {"citations", cites}, {"mode", "extractive"}});
    }

    HttpResponse add_document(const HttpRequest& req, const std::string&) {
        if (req.query.count("filename")) return upload(req);
        std::string ctype = req.header("content-type");
        if (ctype.rfind("multipart/", 0) == 0)
            throw ApiError{415,
                           "multipart uploads are not supported yet; send the file as the "
                           "raw body with ?filename=NAME",
                           "unsupported_media_type"};
        json body = parse_object(req);
        std::optional<std::string> path = opt_string(body, "path");
        if (!path || path->empty())
            throw ApiError{400, "send {\"path\": ...} or the raw file with ?filename=NAME",
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
            throw ApiError{400,
                           *path +
                               " is not a regular file (folders are not supported "
                               "yet)",
                           "not_a_file"};
        return enqueue(real.string(), collection, std::nullopt);
    }

    HttpResponse upload(const HttpRequest& req) {
        std::string name = sanitize_filename(req.query.at("filename"));
        std::string collection = req.query.count("collection") ? req.query.at("collection") : "";
        if (!valid_utf8(collection))
            throw ApiError{400, "collection is not valid UTF-8", "invalid_collection"};
        if (req.body.empty()) throw ApiError{400, "the uploaded file is empty", "empty_file"};
        std::string hash = sha256_hex(req.body);
        // DATA_DIR/uploads/<sha256>/<name>: the name stays readable in citations, and the
        // same bytes under the same name land on the same path.
        fs::path dir = fs::path(cfg_.data_dir) / "uploads" / hash;
        fs::path file = dir / name;
        std::error_code ec;
        if (!fs::exists(file, ec)) {
            fs::create_directories(dir, ec);
            if (ec)
                throw Error(Error::Code::IO, "cannot create " + dir.string() + ": " + ec.message());
            fs::path tmp = dir / ("." + name + ".part");
            {
                std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
                out.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
                out.close();
                if (!out) {
                    fs::remove(tmp, ec);
                    throw Error(Error::Code::IO, "cannot write the upload to " + dir.string());
                }
            }
            fs::rename(tmp, file, ec);
            if (ec) throw Error(Error::Code::IO, "cannot store the upload: " + ec.message());
        }
        std::optional<int64_t> existing;
        if (auto d = stores_.take()->document_by_hash(hash)) existing = d->id;
        return enqueue(fs::absolute(file).string(), collection, existing);
    }

    HttpResponse enqueue(const std::string& path, const std::string& collection,
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
        return json_response(202, {{"document_id", existing ? json(*existing) : json(nullptr)},
                                   {"job_id", job_id},
                                   {"path", path}});
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

    HttpResponse no_model(const HttpRequest&, const std::string&) {
        throw ApiError{503,
                       "no model loaded: generation, embeddings and extraction need a "
                       "GGUF model, which this version of ragd serve cannot load yet",
                       "model_not_loaded"};
    }

    HttpResponse models(const HttpRequest&, const std::string&) {
        return json_response(200, {{"object", "list"}, {"data", json::array()}});
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
    int port_ = 0;
    StorePool stores_;
    std::unique_ptr<Indexes> indexes_;  // searched concurrently; one sync at a time
    std::mutex sync_mu_;                // serializes Indexes::sync
    Metrics metrics_;

    std::mutex jobs_mu_;                     // guards unindexed_
    std::unordered_set<int64_t> unindexed_;  // jobs queued here whose result is not yet searchable

    std::thread ingest_thread_;
    std::mutex wake_mu_;  // guards wake_
    std::condition_variable wake_cv_;
    bool wake_ = false;
    std::atomic<bool> stop_{false};
};

// ---------------------------------------------------------------------------------------
// Configuration and the command
// ---------------------------------------------------------------------------------------

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
        else if (key == "max_body_bytes")
            cfg->max_body_bytes = uint64_t(int_value(v, key, 1, kMaxBodyLimit));
        else if (key == "max_header_bytes")
            cfg->max_header_bytes = uint32_t(int_value(v, key, 1024, 1 << 24));
        else if (key == "read_timeout_s")
            cfg->read_timeout_s = int(int_value(v, key, 1, 3600));
        else if (key == "max_connections")
            cfg->max_connections = int(int_value(v, key, 1, 1000000));
        else if (key == "max_k")
            cfg->max_k = int(int_value(v, key, 1, 1000));
        else if (key == "workers")
            cfg->workers = int(int_value(v, key, 1, 256));
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
    static const char* const kValueFlags[] = {"--data",   "--host",       "--port",     "--api-key",
                                              "--config", "--threads",    "--max-body", "-m",
                                              "--model",  "--embed-model"};
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i], value;
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
    if (flags.count("-m") || flags.count("--embed-model"))
        throw Error(Error::Code::Unsupported,
                    "loading GGUF models (-m, --embed-model) is not available yet; without them "
                    "ragd serve answers extractively");
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

    Config cfg;
    cfg.data_dir = sc.data_dir;
    cfg.workers = sc.workers;

    // SIGINT/SIGTERM are blocked in every thread (threads inherit the mask) and taken by
    // sigwait below, so no handler runs in the middle of a request.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto lock = DataDirLock::try_acquire(cfg.data_dir);
    if (!lock)
        throw Error(Error::Code::Busy, "data directory " + cfg.data_dir +
                                           " is in use by another ragd process (ingest or serve)");
    Service service(sc, cfg, roots);
    service.open();

    HttpOptions ho;
    ho.host = sc.host;
    ho.port = sc.port;
    ho.threads = sc.threads;
    ho.max_connections = sc.max_connections;
    ho.max_header_bytes = sc.max_header_bytes;
    ho.max_body_bytes = sc.max_body_bytes;
    ho.read_timeout_s = sc.read_timeout_s;
    ho.on_transport_error = [&service](int status) { service.record_transport_error(status); };
    HttpServer http(
        ho, [&service](const HttpRequest& r) { return service.handle(r); },
        [](int status, const std::string& message) { return error_response(status, message); });
    http.start();
    service.set_port(http.port());
    std::string shown = sc.host.find(':') != std::string::npos ? "[" + sc.host + "]" : sc.host;
    std::fprintf(stderr, "ragd: listening on http://%s:%d\n", shown.c_str(), http.port());
    std::fflush(stderr);
    service.start_ingest();
    service.notify_ingest();  // jobs left queued by an earlier run

    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "ragd: %s received, shutting down\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
    http.stop();
    service.stop_ingest();
    std::fprintf(stderr, "ragd: stopped\n");
    return 0;
}

}  // namespace ragd
