// api/server: `ragd serve`, the REST API of DESIGN.md (routes, auth, limits, metrics),
// on the transport of api/http.h.
//
// Settings come from, in increasing precedence: defaults, a JSON config file (--config),
// the environment ($RAGD_DATA, $RAGD_API_KEY), flags. The process holds the data
// directory lock, runs crash recovery (requeue running jobs, Indexes::sync), answers
// requests (I/O on `threads` threads, handlers on `handler_threads` others), and ingests
// queued jobs on a background thread (`workers` jobs in parallel, the indexes synced after
// each job). SIGTERM or SIGINT: stop accepting, finish requests in flight, let ingestion
// workers finish their current job (the rest stay queued in SQLite), exit 0.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.h"
#include "generate/chat.h"
#include "generate/generate.h"
#include "generate/runner.h"

namespace ragd {

// ---------------------------------------------------------------------------------------
// The hook for the inference engine (issue 4). ServerConfig::generator is null until a
// model is loaded; while it is, /v1/chat/completions, /v1/completions and /v1/embeddings
// validate their request and answer 503 model_not_loaded, /v1/models lists nothing, and
// /v1/ask answers extractively. Plugging a model in = setting ServerConfig::generator in
// run_serve (where -m/--embed-model are parsed): the routes already call it and shape its
// output as OpenAI objects and SSE chunks, and /v1/ask answers through answer() (mode
// "generated").
// ---------------------------------------------------------------------------------------

// ChatMessage (generate/chat.h) and Generation (generate/runner.h) are the engine's own
// types: {role, content} and {text, prompt_tokens, completion_tokens, finish_reason}.

// Validated by the routes before a Generator sees them.
struct GenerationParams {
    int max_tokens = 512;      // 1..ServerConfig::max_tokens_limit
    double temperature = 1.0;  // 0..2; 0 means greedy
    double top_p = 1.0;        // (0, 1]
    int top_k = 0;             // 0 = off
    double min_p = 0.0;        // 0..1
    double repeat_penalty = 1.0;
    double presence_penalty = 0.0;   // -2..2
    double frequency_penalty = 0.0;  // -2..2
    std::optional<uint64_t> seed;
    std::vector<std::string> stop;         // generation ends before any of these (<= 4)
    std::string response_format = "text";  // "text" | "json_object" | "json_schema"
    std::string json_schema;               // the schema (JSON text) for "json_schema"
};

// Receives each piece of text as it is generated. Returns false when the client has gone
// away: the generator should stop and return what it has.
using TokenSink = std::function<bool(std::string_view piece)>;

class Generator {
  public:
    virtual ~Generator() = default;
    // The id listed by /v1/models and echoed in the "model" field of responses.
    virtual std::string model_id() const = 0;
    // Called from several handler threads at once: an implementation serializes what it
    // must. Throws ragd::Error (InvalidArgument for a prompt that does not fit the
    // context, mapped to 400). SINK is null for non-streamed requests.
    virtual Generation chat(const std::vector<ChatMessage>& messages, const GenerationParams& p,
                            const TokenSink& sink) = 0;
    virtual Generation complete(const std::string& prompt, const GenerationParams& p,
                                const TokenSink& sink) = 0;
    // One L2-normalized vector per input; adds the tokens read to *prompt_tokens. Throws
    // Error::Unsupported when the model does not embed (answered 400 model_cannot_embed).
    virtual std::vector<std::vector<float>> embed(const std::vector<std::string>& inputs,
                                                  int* prompt_tokens) = 0;
    // /v1/ask: an answer to QUESTION grounded in the numbered PASSAGES (retrieve.h), its
    // text citing [n], with the citations it uses. Streams the text through SINK when not
    // null; fills *stats (token counts, finish reason).
    virtual Answer answer(const std::string& question, const std::vector<Passage>& passages,
                          const GenerationParams& p, const TokenSink& sink, Generation* stats) = 0;
};

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

struct ServerConfig {
    std::string host = "127.0.0.1";
    int port = 8080;                           // 0 = any free port (printed when listening)
    std::string api_key;                       // empty = no auth
    std::string data_dir;                      // empty = $RAGD_DATA, else ./ragd-data
    std::vector<std::string> allowed_roots;    // JSON {"path"} uploads must lie under one
    int threads = 2;                           // HTTP I/O threads
    int handler_threads = 4;                   // threads that run requests
    int max_queued_requests = 64;              // waiting for a handler thread; beyond: 503
    uint64_t max_body_bytes = 4ull << 20;      // request body of every route but uploads
    uint64_t max_upload_bytes = 256ull << 20;  // body of POST /v1/documents (raw, multipart)
    uint32_t max_header_bytes = 16 << 10;      // request line + headers
    int read_timeout_s = 15;                   // to receive a header (and a body, +1 s/MiB)
    int write_timeout_s = 30;                  // to send a response, or one piece of a stream
    int max_connections = 512;                 // open connections; beyond: 503
    int max_k = 100;                           // largest k for /v1/search and /v1/ask
    int max_tokens_limit = 4096;               // largest max_tokens a request may ask for
    int workers = 2;                           // parallel ingestion jobs
    bool host_check = true;                    // when bound to loopback: Host must be loopback
    int shutdown_grace_s = 20;                 // SIGTERM: wait this long for requests in flight
    // Models (config.h): the vector index's embedder ("" = what the data directory
    // recorded, "builtin" = the built-in), a cross-encoder for /v1/search and /v1/ask.
    std::string embed_model;   // --embed-model, key "embed_model", $RAGD_EMBED_MODEL
    std::string rerank_model;  // --rerank-model, key "rerank_model", $RAGD_RERANK_MODEL
    int rerank_top_n = 50;     // --rerank-top-n, key "rerank_top_n": fused hits reranked

    // Not a setting: the loaded model, null while none is (see Generator above).
    std::shared_ptr<Generator> generator;
};

// Applies the keys of the JSON object in FILE to *cfg. Throws Error::InvalidArgument for
// an unreadable file, malformed JSON, an unknown key (named) or a value of the wrong type
// or out of range; Error::NotFound when FILE does not exist.
void load_server_config_file(const std::string& file, ServerConfig* cfg);

// ---------------------------------------------------------------------------------------
// The API without the process around it (lock, signals, socket): what run_serve serves,
// and what in-process tests drive directly.
// ---------------------------------------------------------------------------------------

class Api {
  public:
    // Opens the store and the indexes of sc.data_dir (after crash recovery). ROOTS are
    // the allowed roots, already canonical. REQUIRES: the caller holds the data directory
    // lock for the Api's lifetime.
    Api(ServerConfig sc, std::vector<std::string> roots);
    ~Api();  // stops ingestion
    Api(const Api&) = delete;
    Api& operator=(const Api&) = delete;

    // Every route, auth and the Host check; never throws. Thread-safe.
    HttpResponse handle(const HttpRequest& req);
    // The transport's policy: body limits, spooling of uploads, /health inline.
    RequestPolicy policy(const HttpRequest& head) const;
    // The error shape {"error": {"message", "type", "code"}} with a code for STATUS.
    static HttpResponse error(int status, const std::string& message);
    // Wiring to the transport: its real port (for the Host check), its gauges, its errors.
    void attach(int port, std::function<HttpServer::Stats()> stats);
    void record_transport_error(int status);
    // The path under which the transport spools upload bodies.
    std::string spool_dir() const;

    // Background ingestion of queued jobs (uploads, and jobs other processes queue).
    void start_ingest();
    void stop_ingest();  // workers finish their current job; the rest stay queued

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

// `ragd serve ARGS...` (argv[1] == "serve"). Returns the exit code; throws ragd::Error for
// bad usage (caught by run_cli).
int run_serve(int argc, char** argv);

}  // namespace ragd
