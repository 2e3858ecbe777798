// pipeline: the job queue workers. A job is one file: read, hash, parse, chunk, store.

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "ingest/ingest.h"

namespace fs = std::filesystem;

namespace ragd {

namespace {

bool is_hidden(const fs::path& p) {
    std::string name = p.filename().string();
    return name.size() > 1 && name[0] == '.' && name != "..";
}

std::string lowercase_extension(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext;
}

// For folder walks: an extension-less file is a document only if it starts like text
// (LICENSE, NOTES), not like a program or an archive.
bool starts_like_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char head[8192];
    f.read(head, sizeof head);
    std::streamsize n = f.gcount();
    return n > 0 && looks_like_text(std::string(head, static_cast<size_t>(n)));
}

}  // namespace

bool is_supported_extension(const std::string& path) {
    std::string ext = lowercase_extension(path);
    return ext == ".pdf" || ext == ".txt" || ext == ".text" || ext == ".md" || ext == ".markdown";
}

std::vector<std::string> expand_paths(const std::vector<std::string>& paths,
                                      std::vector<std::string>* missing,
                                      std::vector<std::string>* skipped) {
    std::vector<std::string> files;
    for (const std::string& p : paths) {
        std::error_code ec;
        fs::path abs = fs::absolute(p, ec);
        if (ec || !fs::exists(abs, ec)) {
            if (missing) missing->push_back(p);
            continue;
        }
        abs = fs::weakly_canonical(abs, ec);
        if (fs::is_directory(abs, ec)) {
            auto it = fs::recursive_directory_iterator(
                abs, fs::directory_options::skip_permission_denied, ec);
            for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (is_hidden(it->path())) {
                    if (it->is_directory(ec)) it.disable_recursion_pending();
                    continue;
                }
                if (!it->is_regular_file(ec)) continue;
                std::string file = it->path().string();
                bool take = it->path().has_extension() ? is_supported_extension(file)
                                                       : starts_like_text(file);
                if (!take) {
                    if (skipped) skipped->push_back(file);
                    continue;
                }
                files.push_back(file);
            }
        } else {
            // Named explicitly: taken even if hidden or not regular, so its job can say why
            // it fails instead of silently skipping it.
            files.push_back(abs.string());
        }
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    return files;
}

namespace {

// Processes one claimed job and returns its finished row. Every failure fails the job with
// its message, store errors included (a full disk, a busy timeout): one bad job never stops
// the others. Only a failure to record the failure itself propagates.
JobRow process_job(Store& store, const JobRow& job, const Config& cfg) {
    try {
        DocumentRow doc;
        doc.path = job.path;
        doc.name = fs::path(job.path).filename().string();
        doc.collection = job.collection;
        std::string bytes = read_input_file(job.path, cfg);
        doc.hash = sha256_hex(bytes);
        doc.bytes = static_cast<int64_t>(bytes.size());

        // Fast path: these exact bytes are stored for this path already.
        if (auto same = store.document_by_path(doc.path); same && same->hash == doc.hash) {
            if (same->collection != doc.collection) store.set_collection(same->id, doc.collection);
            store.finish_job(job.id, Store::PutResult::Unchanged, same->id, same->n_pages,
                             static_cast<int>(same->n_chunks));
            return *store.job(job.id);
        }
        // PDFs are parsed from the file by the isolated child; the rest from the bytes read.
        ParsedDocument parsed = lowercase_extension(job.path) == ".pdf"
                                    ? parse_file(job.path, cfg)
                                    : parse_bytes(job.path, bytes, cfg);
        bytes = std::string();
        doc.kind = parsed.kind;
        std::vector<NewChunk> chunks =
            chunk_document(parsed.pages, cfg.chunk_tokens, cfg.chunk_overlap);
        if (chunks.empty())
            throw Error(Error::Code::InvalidArgument, job.path + ": no text to index");
        int64_t id = 0;
        store.put_document(doc, parsed.pages, chunks, &id, job.id);
    } catch (const Error& e) {
        store.fail_job(job.id, e.what());
    } catch (const std::bad_alloc&) {
        store.fail_job(job.id, job.path + ": out of memory");
    }
    return *store.job(job.id);
}

}  // namespace

int run_ingest_workers(const Config& cfg, const std::function<void(const JobEvent&)>& on_done,
                       const std::atomic<bool>* stop) {
    const int n_workers = std::max(1, cfg.workers);
    std::mutex mu;  // guards on_done, processed, first_error
    int processed = 0;
    std::exception_ptr first_error;

    auto worker = [&]() {
        try {
            Store store(cfg.data_dir);
            while (!(stop && stop->load())) {
                std::optional<JobRow> job = store.claim_job();
                if (!job) break;
                auto t0 = std::chrono::steady_clock::now();
                JobRow done = process_job(store, *job, cfg);
                JobEvent ev{
                    done,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
                std::lock_guard<std::mutex> lock(mu);
                ++processed;
                if (on_done) on_done(ev);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu);
            if (!first_error) first_error = std::current_exception();
        }
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < n_workers; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (first_error) std::rethrow_exception(first_error);
    return processed;
}

}  // namespace ragd
