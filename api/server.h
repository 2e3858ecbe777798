// api/server: `ragd serve`, the REST API of DESIGN.md (routes, auth, limits, metrics),
// on the transport of api/http.h.
//
// Settings come from, in increasing precedence: defaults, a JSON config file (--config),
// the environment ($RAGD_DATA, $RAGD_API_KEY), flags. The process holds the data
// directory lock, runs crash recovery (requeue running jobs, Indexes::sync), answers
// requests on `threads` I/O threads, and ingests queued jobs on a background thread
// (`workers` jobs in parallel, the indexes synced after each job). SIGTERM or SIGINT:
// stop accepting, finish requests in flight, let ingestion workers finish their current
// job (the rest stay queued in SQLite), exit 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ragd {

struct ServerConfig {
    std::string host = "127.0.0.1";
    int port = 8080;                       // 0 = any free port (printed when listening)
    std::string api_key;                   // empty = no auth
    std::string data_dir;                  // empty = $RAGD_DATA, else ./ragd-data
    std::vector<std::string> allowed_roots;  // JSON {"path"} uploads must lie under one
    int threads = 4;                       // HTTP I/O threads (also run the handlers)
    uint64_t max_body_bytes = 64ull << 20; // request body, uploads included
    uint32_t max_header_bytes = 16 << 10;  // request line + headers
    int read_timeout_s = 15;               // to receive a header (and a body, +1 s/MiB)
    int max_connections = 512;             // open connections; beyond: 503
    int max_k = 100;                       // largest k for /v1/search and /v1/ask
    int workers = 2;                       // parallel ingestion jobs
    bool host_check = true;                // when bound to loopback: Host must be loopback
};

// Applies the keys of the JSON object in FILE to *cfg. Throws Error::InvalidArgument for
// an unreadable file, malformed JSON, an unknown key (named) or a value of the wrong type
// or out of range; Error::NotFound when FILE does not exist.
void load_server_config_file(const std::string& file, ServerConfig* cfg);

// `ragd serve ARGS...` (argv[1] == "serve"). Returns the exit code; throws ragd::Error for
// bad usage (caught by run_cli).
int run_serve(int argc, char** argv);

}  // namespace ragd
