// api/cli: argument parsing, one function per command, text and JSON output.
#include "api/cli.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/args.h"
#include "api/commands.h"
#include "api/json.h"
#include "api/server.h"
#include "config/config.h"
#include "generate/generate.h"
#include "generate/model.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "ingest/store.h"
#include "retrieve/retrieve.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace ragd {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// ---------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------

std::string join(const std::vector<std::string>& words, const char* sep = " ") {
    std::string out;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i) out += sep;
        out += words[i];
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Opening the data directory
// ---------------------------------------------------------------------------------------

Config base_config(const Args& args) {
    Config cfg;
    cfg.data_dir = resolve_data_dir(args.get("--data"));
    // Models: flags, else $RAGD_EMBED_MODEL / $RAGD_RERANK_MODEL (config.h).
    cfg.embed_model = args.get("--embed-model");
    cfg.rerank_model = args.get("--rerank-model");
    apply_model_env(&cfg);
    cfg.rerank_top_n = static_cast<int>(args.get_int("--rerank-top-n", cfg.rerank_top_n, 1, 1000));
    return cfg;
}

// The flags every command that opens the indexes takes.
const FlagSpec kEmbedFlag = {"--embed-model", true};

// The data directory opened for a command. Writers hold the directory lock for the whole
// command; readers take it only when it is free, just long enough to finish any index
// catch-up a crash left behind, and then let it go so they never keep a writer out.
struct Session {
    Config cfg;
    std::unique_ptr<DataDirLock> lock;
    std::unique_ptr<Store> store;
    std::unique_ptr<Indexes> indexes;
    std::unique_ptr<Reranker> reranker;  // cfg.rerank_model, for search and ask
};

// REEMBED: a writer re-embeds now when the vectors are another embedder's (reindex, which
// rebuilds everything anyway, passes false).
std::unique_ptr<Session> open_session(const Config& cfg, bool write, bool reembed = true) {
    if (!write && !fs::exists(cfg.data_dir + "/ragd.db"))
        throw Error(Error::Code::NotFound, "no ragd data in " + cfg.data_dir +
                                               " (run `ragd ingest PATH` first, or pass --data)");
    auto s = std::make_unique<Session>();
    s->cfg = cfg;
    s->lock = DataDirLock::try_acquire(cfg.data_dir);
    if (write && !s->lock)
        throw Error(Error::Code::Busy, "data directory " + cfg.data_dir +
                                           " is in use by another ragd process (ingest or "
                                           "serve); try again when it is done");
    s->store = std::make_unique<Store>(cfg.data_dir);
    EmbedderChoice emb = choose_embedder(cfg);
    s->indexes = std::make_unique<Indexes>(cfg, emb.target, emb.resolver);
    if (!cfg.rerank_model.empty()) s->reranker = make_gguf_reranker(cfg.rerank_model);
    // Readers never re-embed: they search the vectors there are with their own embedder.
    if (!write || !reembed) s->indexes->set_background_reembed(true);
    if (s->lock) {
        // Crash recovery: a job left running by a killed process goes back to the queue,
        // and the indexes catch up with the store.
        s->store->requeue_running_jobs();
        if (write && reembed && s->indexes->needs_reembed()) {
            // Another embedder built the vectors: re-embed now (a writer holds the lock
            // anyway), with progress; readers keep searching the old vectors instead.
            std::fprintf(stderr, "ragd: re-embedding the chunks with %s...\n",
                         s->indexes->embedder().name().c_str());
            s->indexes->reembed(*s->store, [](int64_t done, int64_t total) {
                if (isatty(2))
                    std::fprintf(stderr, "\r\033[Kragd: re-embedded %" PRId64 "/%" PRId64, done,
                                 total);
            });
            if (isatty(2)) std::fprintf(stderr, "\n");
        }
        s->indexes->sync(*s->store);
        if (!write) s->lock.reset();
    }
    if (std::string note = s->indexes->vector_note(); !note.empty())
        std::fprintf(stderr, "ragd: note: %s\n", note.c_str());
    return s;
}

// ---------------------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------------------

void print_json(const json& j) {
    // Invalid UTF-8 cannot reach here (ingestion repairs it), but never abort on it.
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

std::string page_label(int start, int end) {
    return end > start ? "pp." + std::to_string(start) + "-" + std::to_string(end)
                       : "p." + std::to_string(start);
}

// Collapses whitespace runs (newlines, form feeds) into single spaces for one-line display.
std::string one_line(const std::string& s, size_t max_bytes) {
    std::string out;
    bool space = false;
    for (char ch : s) {
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\f') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += ch;
    }
    if (out.size() > max_bytes) {
        size_t cut = max_bytes;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out = out.substr(0, cut) + "...";
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// ingest
// ---------------------------------------------------------------------------------------

std::atomic<bool> g_stop{false};

void on_interrupt(int) {
    g_stop.store(true);
}

// Progress on stderr: one redrawn line on a terminal, one line per file otherwise.
class Progress {
  public:
    Progress(int total, bool quiet) : total_(total), quiet_(quiet), tty_(isatty(2)) {
        t0_ = std::chrono::steady_clock::now();
    }

    void job_done(const JobEvent& ev) {
        const JobRow& j = ev.job;
        ++done_;
        if (j.state == "failed") {
            ++failed_;
            clear_line();
            std::fprintf(stderr, "ragd: failed: %s\n", j.error.c_str());
        } else {
            if (j.result == "added") ++added_;
            if (j.result == "replaced") ++replaced_;
            if (j.result == "unchanged") ++unchanged_;
            if (j.result != "unchanged") {
                pages_ += j.pages;
                chunks_ += j.chunks;
            }
        }
        if (quiet_) return;
        std::string name = fs::path(j.path).filename().string();
        if (tty_) {
            double rate = done_ / std::max(elapsed(), 1e-3);
            int width = 24;
            int filled = total_ > 0 ? width * done_ / total_ : width;
            std::string bar(static_cast<size_t>(filled), '#');
            bar.resize(static_cast<size_t>(width), '.');
            std::fprintf(stderr,
                         "\r\033[K[%s] %d/%d files | %" PRId64 " pages | %" PRId64
                         " chunks | %.1f files/s | %s",
                         bar.c_str(), done_, total_, pages_, chunks_, rate,
                         one_line(name, 40).c_str());
            drawn_ = true;
        } else if (j.state == "done") {
            std::fprintf(stderr, "ragd: [%d/%d] %s %s (%d pages, %d chunks, %.2f s)\n", done_,
                         total_, j.result.c_str(), j.path.c_str(), j.pages, j.chunks, ev.seconds);
        }
    }

    void clear_line() {
        if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
        drawn_ = false;
    }
    double elapsed() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    }

    int total_, done_ = 0, failed_ = 0, added_ = 0, replaced_ = 0, unchanged_ = 0;
    int64_t pages_ = 0, chunks_ = 0;

  private:
    bool quiet_, tty_, drawn_ = false;
    std::chrono::steady_clock::time_point t0_;
};

int cmd_ingest(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--data", true},
                            kEmbedFlag,
                            {"--collection -c", true},
                            {"--workers -j", true},
                            {"--chunk-tokens", true},
                            {"--chunk-overlap", true},
                            {"--quiet -q", false},
                            {"--json", false}});
    Config cfg = base_config(args);
    cfg.workers = static_cast<int>(args.get_int("--workers", cfg.workers, 1, 64));
    cfg.chunk_tokens = static_cast<int>(args.get_int("--chunk-tokens", cfg.chunk_tokens, 16, 8192));
    cfg.chunk_overlap = static_cast<int>(
        args.get_int("--chunk-overlap", cfg.chunk_overlap, 0, cfg.chunk_tokens / 2 - 1));
    std::string collection = args.get("--collection");

    // Every named path must exist before anything is queued: a typo changes nothing.
    std::vector<std::string> missing, skipped;
    std::vector<std::string> files = expand_paths(args.positional, &missing, &skipped);
    if (!missing.empty())
        throw Error(Error::Code::NotFound, missing[0] + ": no such file or directory");
    if (files.empty() && !args.positional.empty())
        throw Error(Error::Code::InvalidArgument,
                    "no files found in " + join(args.positional, ", "));
    if (args.positional.empty() && !fs::exists(cfg.data_dir + "/ragd.db"))
        throw Error(Error::Code::InvalidArgument,
                    "ingest needs files or folders (or, with none, resumes the queue of an "
                    "existing data directory)");

    bool quiet = args.has("--quiet") || args.has("--json");
    if (!skipped.empty() && !quiet)
        std::fprintf(stderr, "ragd: skipping %zu file%s of unsupported type (e.g. %s)\n",
                     skipped.size(), skipped.size() == 1 ? "" : "s",
                     fs::path(skipped[0]).filename().c_str());

    // The queue is in SQLite and needs no lock: queue first, so that if another process
    // (an ingest or serve) holds the directory, it picks these files up.
    {
        Store queue(cfg.data_dir);
        for (const std::string& f : files) queue.enqueue_job(f, collection);
    }
    std::unique_ptr<Session> session;
    for (int tries = 0; !session; ++tries) {
        try {
            session = open_session(cfg, /*write=*/true);
        } catch (const Error& e) {
            // A reader holds the lock only for a moment; a writer for its whole run.
            if (e.code() != Error::Code::Busy) throw;
            if (tries == 20) {
                std::printf(
                    "Queued %zu file%s: another ragd process (ingest or serve) holds %s "
                    "and ingests the queue; `ragd ingest` with no path resumes it "
                    "later.\n",
                    files.size(), files.size() == 1 ? "" : "s", cfg.data_dir.c_str());
                return kExitOk;
            }
            usleep(100 * 1000);
        }
    }
    Store& store = *session->store;
    int total = static_cast<int>(store.counts().jobs_pending);
    // Embedding done while opening (a re-embed for a new --embed-model) is not this
    // ingest's share.
    const double embed_before = session->indexes->embed_seconds();

    // The first Ctrl-C stops after the jobs in progress; a second one (SA_RESETHAND) kills.
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    // Workers fill SQLite; this thread brings the indexes up to date every few seconds, so
    // searches from other processes see documents while a long ingest runs.
    Progress progress(total, quiet);
    std::atomic<bool> workers_done{false};
    std::exception_ptr worker_error;
    std::thread workers([&] {
        try {
            run_ingest_workers(
                cfg, [&](const JobEvent& ev) { progress.job_done(ev); }, &g_stop);
        } catch (...) {
            worker_error = std::current_exception();
        }
        workers_done.store(true);
    });
    auto last_sync = std::chrono::steady_clock::now();
    while (!workers_done.load()) {
        usleep(50 * 1000);
        if (std::chrono::steady_clock::now() - last_sync > std::chrono::seconds(3)) {
            session->indexes->sync(store);
            last_sync = std::chrono::steady_clock::now();
        }
    }
    workers.join();
    progress.clear_line();
    if (!quiet) std::fprintf(stderr, "ragd: indexing...\n");
    session->indexes->sync(store);  // also after a worker error: what was stored gets indexed
    if (worker_error) std::rethrow_exception(worker_error);
    double secs = progress.elapsed();
    bool interrupted = g_stop.load();
    double embed_secs = session->indexes->embed_seconds() - embed_before;

    StoreCounts counts = store.counts();
    if (args.has("--json")) {
        print_json({{"files", progress.done_},
                    {"added", progress.added_},
                    {"replaced", progress.replaced_},
                    {"unchanged", progress.unchanged_},
                    {"failed", progress.failed_},
                    {"pages", progress.pages_},
                    {"chunks", progress.chunks_},
                    {"seconds", secs},
                    {"embed_seconds", embed_secs},
                    {"embedder", session->indexes->embedder().name()},
                    {"interrupted", interrupted},
                    {"documents_total", counts.documents},
                    {"chunks_total", counts.chunks}});
    } else {
        std::printf("Ingested %d file%s: %d added, %d replaced, %d unchanged, %d failed; %" PRId64
                    " pages, %" PRId64 " chunks in %.2f s (%.1f pages/s). Store: %" PRId64
                    " documents, %" PRId64 " chunks.\n",
                    progress.done_, progress.done_ == 1 ? "" : "s", progress.added_,
                    progress.replaced_, progress.unchanged_, progress.failed_, progress.pages_,
                    progress.chunks_, secs, progress.pages_ / std::max(secs, 1e-3),
                    counts.documents, counts.chunks);
        if (embed_secs > 0)
            std::printf("Embedding (%s): %.2f s, %.0f%% of the time.\n",
                        session->indexes->embedder().name().c_str(), embed_secs,
                        100.0 * embed_secs / std::max(secs, 1e-3));
        if (interrupted)
            std::printf("Interrupted: %" PRId64
                        " files are still queued and will be ingested by the next `ragd "
                        "ingest`.\n",
                        counts.jobs_pending);
    }
    if (interrupted) return 130;
    return progress.failed_ > 0 ? kExitFailed : kExitOk;
}

// ---------------------------------------------------------------------------------------
// search / ask
// ---------------------------------------------------------------------------------------

const std::vector<FlagSpec> kSearchFlags = {
    {"--data", true},  {"--mode", true},          {"-k --top-k", true},
    {"--json", false}, {"--collection -c", true}, {"--document", true},
    kEmbedFlag,        {"--rerank-model", true},  {"--rerank-top-n", true}};

SearchRequest search_request(const Args& args, const std::string& what) {
    SearchRequest req;
    req.query = join(args.positional);
    if (req.query.find_first_not_of(" \t\r\n") == std::string::npos)
        throw Error(Error::Code::InvalidArgument, what + " needs a query");
    req.k = static_cast<int>(args.get_int("-k", 5, 1, 1000));
    req.mode = parse_search_mode(args.get("--mode", "hybrid"));
    req.filter.collection = args.get("--collection");
    req.filter.document_id = args.get_int("--document", 0, 0, INT64_MAX);
    return req;
}

int cmd_search(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2, kSearchFlags);
    SearchRequest req = search_request(args, "search");
    Config cfg = base_config(args);
    auto session = open_session(cfg, /*write=*/false);
    std::vector<Hit> hits =
        search(*session->indexes, *session->store, req, cfg, session->reranker.get());
    if (args.has("--json")) {
        json arr = json::array();
        for (const Hit& h : hits) arr.push_back(hit_json(h));
        print_json(arr);
        return kExitOk;
    }
    if (hits.empty()) {
        std::printf("No results.\n");
        return kExitOk;
    }
    for (size_t i = 0; i < hits.size(); ++i) {
        const ChunkRow& c = hits[i].chunk;
        std::string rr = hits[i].reranked ? ", rerank " + std::to_string(hits[i].rerank_score) : "";
        std::printf("%zu. %s %s, bytes %" PRId64 "-%" PRId64 "  (score %.4f%s)\n   %s\n", i + 1,
                    c.document.c_str(), page_label(c.page_start, c.page_end).c_str(), c.start,
                    c.end, hits[i].score, rr.c_str(), one_line(c.text, 300).c_str());
    }
    return kExitOk;
}

int cmd_ask(int argc, char** argv) {
    std::vector<FlagSpec> flags = kSearchFlags;
    for (FlagSpec f : std::vector<FlagSpec>{{"-m --model", true},
                                            {"-n --max-tokens", true},
                                            {"--temp --temperature", true},
                                            {"--seed", true},
                                            {"-t --threads", true},
                                            {"-c --ctx-size", true},
                                            {"--kv-type", true},
                                            {"--mmap", false},
                                            {"--no-mmap", false}})
        flags.push_back(f);
    Args args = parse_args(argc, argv, 2, flags);
    SearchRequest req = search_request(args, "ask");
    Config cfg = base_config(args);
    // Model options are checked, and the model loaded, before any retrieval work.
    GenerateOptions gen;
    gen.max_tokens = int(args.get_int("-n", 512, 1, 1 << 20));
    gen.sampling.temperature = float(get_double(args, "--temp", 0.0, 0, 100));
    gen.sampling.seed = uint64_t(args.get_int("--seed", 0, 0, INT64_MAX));
    std::unique_ptr<ModelRunner> runner;
    if (args.has("-m"))
        runner = std::make_unique<ModelRunner>(
            Model::load(args.get("-m"), gguf::load_mode(args.has("--mmap"), args.has("--no-mmap"))),
            int(args.get_int("-c", 0, 0, 1 << 24)), int(args.get_int("-t", 0, 0, 1024)),
            parse_kv_type(args.get("--kv-type", "f32")));
    auto session = open_session(cfg, /*write=*/false);
    std::vector<Hit> hits =
        search(*session->indexes, *session->store, req, cfg, session->reranker.get());
    std::vector<Passage> passages = assemble_context(hits, cfg.context_tokens);
    const bool as_json = args.has("--json");
    Answer answer;
    if (runner) {
        // Text streams to the terminal as it is generated; JSON waits for the end.
        OnText print = [](const std::string& piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        };
        Generation g;
        answer = model_answer(*runner, req.query, passages, gen, as_json ? OnText() : print, &g);
        std::fprintf(stderr, "\n[%d prompt tokens (%d cached) in %.2f s, %d generated in %.2f s]\n",
                     g.prompt_tokens, g.reused_tokens, g.prompt_seconds, g.completion_tokens,
                     g.generate_seconds);
    } else {
        answer = extractive_answer(req.query, passages);
    }
    if (as_json) {
        json cites = json::array();
        for (const Citation& c : answer.citations) cites.push_back(citation_json(c));
        print_json({{"answer", answer.text},
                    {"citations", cites},
                    {"mode", runner ? "model" : "extractive"}});
        return kExitOk;
    }
    if (!runner) std::printf("%s", answer.text.c_str());
    std::printf("\n");
    if (!answer.citations.empty()) {
        std::printf("\nSources:\n");
        for (const Citation& c : answer.citations)
            std::printf("[%d] %s p.%d, bytes %" PRId64 "-%" PRId64 "\n    \"%s\"\n", c.number,
                        c.document.c_str(), c.page, c.start, c.end, one_line(c.quote, 400).c_str());
    }
    return kExitOk;
}

// ---------------------------------------------------------------------------------------
// docs / stats / reindex
// ---------------------------------------------------------------------------------------

int cmd_docs_rm(int argc, char** argv) {
    Args args = parse_args(argc, argv, 3, {{"--data", true}, {"--json", false}, kEmbedFlag});
    if (args.positional.empty())
        throw Error(Error::Code::InvalidArgument, "docs rm needs a document id or path");
    Config cfg = base_config(args);
    auto session = open_session(cfg, /*write=*/true);
    Store& store = *session->store;
    // Resolve every argument before removing anything: one bad name changes nothing.
    std::vector<DocumentRow> targets;
    for (const std::string& a : args.positional) {
        std::optional<DocumentRow> d;
        bool numeric = !a.empty() && std::all_of(a.begin(), a.end(),
                                                 [](unsigned char c) { return std::isdigit(c); });
        if (numeric && a.size() < 19) d = store.document(std::stoll(a));
        if (!d) {
            std::error_code ec;
            fs::path abs = fs::weakly_canonical(fs::absolute(a, ec), ec);
            d = store.document_by_path(abs.string());
        }
        if (!d) throw Error(Error::Code::NotFound, "no document with id or path " + a);
        targets.push_back(*d);
    }
    std::vector<int64_t> ids;
    for (const DocumentRow& d : targets) ids.push_back(d.id);
    store.remove_documents(ids);  // all or nothing
    session->indexes->sync(store);
    for (const DocumentRow& d : targets)
        std::printf("Removed document %" PRId64 " (%s, %" PRId64 " chunks)\n", d.id, d.path.c_str(),
                    d.n_chunks);
    return kExitOk;
}

int cmd_docs(int argc, char** argv) {
    if (argc >= 3 && std::string(argv[2]) == "rm") return cmd_docs_rm(argc, argv);
    Args args = parse_args(argc, argv, 2, {{"--data", true}, {"--json", false}, kEmbedFlag});
    if (!args.positional.empty())
        throw Error(Error::Code::InvalidArgument,
                    "unexpected argument " + args.positional[0] + " (did you mean `docs rm`?)");
    Config cfg = base_config(args);
    auto session = open_session(cfg, /*write=*/false);
    std::vector<DocumentRow> docs = session->store->documents();
    if (args.has("--json")) {
        json arr = json::array();
        for (const DocumentRow& d : docs) arr.push_back(document_json(d));
        print_json(arr);
        return kExitOk;
    }
    if (docs.empty()) {
        std::printf("No documents.\n");
        return kExitOk;
    }
    std::printf("%6s  %-8s  %5s  %6s  %-12s  %s\n", "ID", "KIND", "PAGES", "CHUNKS", "COLLECTION",
                "PATH");
    for (const DocumentRow& d : docs)
        std::printf("%6" PRId64 "  %-8s  %5d  %6" PRId64 "  %-12s  %s\n", d.id, d.kind.c_str(),
                    d.n_pages, d.n_chunks, d.collection.empty() ? "-" : d.collection.c_str(),
                    d.path.c_str());
    return kExitOk;
}

int cmd_stats(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2, {{"--data", true}, {"--json", false}, kEmbedFlag});
    Config cfg = base_config(args);
    auto session = open_session(cfg, /*write=*/false);
    StoreCounts c = session->store->counts();
    int64_t keyword_docs = session->indexes->keyword_docs();
    int64_t vectors = session->indexes->vectors();
    if (args.has("--json")) {
        print_json({{"documents", c.documents},
                    {"pages", c.pages},
                    {"chunks", c.chunks},
                    {"keyword_docs", keyword_docs},
                    {"vectors", vectors},
                    {"jobs_pending", c.jobs_pending + c.jobs_running},
                    {"jobs_failed", c.jobs_failed},
                    {"jobs_done", c.jobs_done},
                    {"embedder", session->indexes->embedder().name()},
                    {"vectors_embedder", session->indexes->serving_embedder()},
                    {"data_dir", cfg.data_dir}});
        return kExitOk;
    }
    std::printf("data directory  %s\n", cfg.data_dir.c_str());
    std::printf("documents       %" PRId64 "\n", c.documents);
    std::printf("pages           %" PRId64 "\n", c.pages);
    std::printf("chunks          %" PRId64 "\n", c.chunks);
    std::printf("keyword docs    %" PRId64 "  (Xapian)\n", keyword_docs);
    std::printf("vectors         %" PRId64 "  (FAISS, %s)\n", vectors,
                session->indexes->embedder().name().c_str());
    std::printf("jobs            %" PRId64 " pending, %" PRId64 " failed, %" PRId64 " done\n",
                c.jobs_pending + c.jobs_running, c.jobs_failed, c.jobs_done);
    return kExitOk;
}

int cmd_reindex(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2, {{"--data", true}, kEmbedFlag});
    Config cfg = base_config(args);
    if (!fs::exists(cfg.data_dir + "/ragd.db"))
        throw Error(Error::Code::NotFound, "no ragd data in " + cfg.data_dir);
    auto session = open_session(cfg, /*write=*/true, /*reembed=*/false);
    auto t0 = std::chrono::steady_clock::now();
    session->indexes->rebuild(*session->store);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("Rebuilt the indexes from %" PRId64 " chunks in %.2f s: %" PRId64
                " keyword docs, %" PRId64 " vectors (%s, embedding %.2f s).\n",
                session->store->counts().chunks, secs, session->indexes->keyword_docs(),
                session->indexes->vectors(), session->indexes->embedder().name().c_str(),
                session->indexes->embed_seconds());
    return kExitOk;
}

// ---------------------------------------------------------------------------------------
// dispatch
// ---------------------------------------------------------------------------------------

const char* kUsage = R"(ragd: ask questions about your documents, locally.

Usage:
  ragd ingest  [--data DIR] [--collection C] [--workers N] PATH...   add files or folders
               (with no PATH: resume the queue left by an interrupted ingest)
  ragd search  [--data DIR] [--mode hybrid|keyword|vector] [-k N] [--json] QUERY
  ragd ask     [--data DIR] [-k N] [--json] [-m MODEL.gguf [-n N] [--temp T] [--seed S]
               [-t THREADS] [-c CTX] [--kv-type f32|q8] [--mmap|--no-mmap]] QUESTION
                                                                     answer with citations
               (extractive without -m; with -m the model writes the answer, greedy by default)
  ragd docs    [--data DIR] [--json]                                 list documents
  ragd docs rm [--data DIR] ID|PATH...                               delete documents
  ragd stats   [--data DIR] [--json]                                 counts per store
  ragd reindex [--data DIR]                                          rebuild Xapian and FAISS
  ragd run     -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS]
               [-c CTX] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
               [--mmap|--no-mmap] [--kv-type f32|q8] [--logits-out FILE]
                                                                     generate from a prompt
  ragd tokenize -m MODEL.gguf [--no-special] TEXT                   token ids as JSON
  ragd embed   -m MODEL.gguf [--pooling mean|cls|last] [-t THREADS] [--no-normalize]
               TEXT...                                               JSON vectors (bert models)
  ragd bench   -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 3] [--mmap|--no-mmap]
               [--kv-type f32|q8] [--json]
                                                                     prefill/decode tok/s
  ragd extract -m MODEL.gguf --schema FILE [--seed S] [--temp T] [-n N]
               [--instructions TEXT] [--data DIR] DOC      JSON {data, evidence} under a schema
               (DOC: a document id, an ingested path, or a text file read directly)
  ragd serve   [--data DIR] [--host H] [--port N] [--api-key KEY] [--config FILE]
               [--threads N] [--max-body BYTES]                      REST API (see README)
               [-m MODEL.gguf [-c CTX] [-t THREADS] [--kv-type f32|q8] [--mmap|--no-mmap]]
                                                                     with a language model
               [--embed-model E.gguf] [--rerank-model R.gguf]       embedding, reranking

Search and ask also take --collection C and --document ID filters, and
  --rerank-model R.gguf [--rerank-top-n 50] (a cross-encoder reorders the top fused hits).
Commands that open the indexes take --embed-model E.gguf (or builtin; $RAGD_EMBED_MODEL):
  the data directory remembers the model its vectors were built with.
Commands that load a model (-m) read it into memory when it takes at most half of the
  available memory (faster decode), else map it; --mmap / --no-mmap force either way.
Ingest also takes --chunk-tokens N (default 200) and --chunk-overlap N (default 40).
The data directory is --data DIR, else $RAGD_DATA, else ./ragd-data.
)";

struct Command {
    const char* name;
    int (*fn)(int, char**);
};

const Command kCommands[] = {
    {"ingest", cmd_ingest}, {"search", cmd_search}, {"ask", cmd_ask},
    {"docs", cmd_docs},     {"stats", cmd_stats},   {"reindex", cmd_reindex},
    {"serve", run_serve},   {"run", cmd_run},       {"tokenize", cmd_tokenize},
    {"bench", cmd_bench},   {"embed", cmd_embed},   {"extract", cmd_extract},
};

const char* const kPlanned[] = {"extract"};

}  // namespace

int run_cli(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    std::string name = argv[1];
    if (name == "help" || name == "--help" || name == "-h") {
        std::fputs(kUsage, stdout);
        return kExitOk;
    }
    if (name == "version" || name == "--version") {
        std::printf("ragd 0.1.0\n");
        return kExitOk;
    }
    for (int i = 2; i < argc; ++i) {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
    }
    try {
        for (const Command& c : kCommands)
            if (name == c.name) return c.fn(argc, argv);
        for (const char* p : kPlanned)
            if (name == p)
                throw Error(Error::Code::Unsupported,
                            "`ragd " + name + "` is not available in this version yet");
        throw Error(Error::Code::InvalidArgument,
                    "unknown command '" + name + "' (see `ragd help`)");
    } catch (const Error& e) {
        std::fprintf(stderr, "ragd: error: %s\n", e.what());
        switch (e.code()) {
            case Error::Code::InvalidArgument:
            case Error::Code::Unsupported:
            case Error::Code::NotFound:
                return kExitUsage;
            default:
                return kExitFailed;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ragd: error: %s\n", e.what());
        return kExitFailed;
    }
}

}  // namespace ragd
