// ingest: files -> pages of text -> chunks -> Store.
//
// Parsing turns one file into pages of UTF-8 text. PDFs are parsed by poppler-cpp in a
// child process (Config::pdf_worker_exe run as `EXE __pdf-worker FILE`) under a wall-clock
// and address-space limit, so a hostile PDF can only fail its own job. Text and Markdown
// are one page each; invalid UTF-8 is repaired (each bad byte becomes U+FFFD). Files
// without a known extension are sniffed: taken as text when they look like text, else
// rejected as Unsupported.
//
// Chunking splits the document text at paragraph, then sentence, then word boundaries into
// chunks of about Config::chunk_tokens tokens, neighbours sharing about chunk_overlap tokens.
//
// Errors: parse_file and chunk_document throw ragd::Error with a one-line message that
// names the file and the problem.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "ingest/store.h"

namespace ragd {

struct ParsedDocument {
    std::string kind;                // "pdf" | "text" | "markdown"
    std::vector<std::string> pages;  // UTF-8 text per page, page 1 first; may be empty strings
};

// Reads and parses one file. Throws Error: NotFound (no such file), IO (unreadable),
// InvalidArgument (empty, too large, a directory), Unsupported (binary or unknown format),
// Corrupt (malformed/encrypted PDF, PDF with no pages or no text), and says which.
ParsedDocument parse_file(const std::string& path, const Config& cfg);

// Reads a whole input file with the checks parse_file makes: NotFound, InvalidArgument
// (a directory or other non-regular file, empty, larger than cfg.max_file_bytes), IO.
std::string read_input_file(const std::string& path, const Config& cfg);

// Parses bytes already in memory (uploads), with the file name deciding the format.
ParsedDocument parse_bytes(const std::string& name, const std::string& bytes, const Config& cfg);

// Entry point of the PDF child process: argv = {exe, "__pdf-worker", FILE}. Writes the
// pages to stdout in the framing parse_file expects. Returns the process exit code.
int pdf_worker_main(int argc, char** argv);

// Replaces each invalid UTF-8 sequence (and NUL) with U+FFFD; returns the number replaced.
size_t repair_utf8(std::string& s);
// True when the bytes look like text (no NULs, mostly printable UTF-8) — for sniffing.
bool looks_like_text(const std::string& bytes);

// Splits the document text (pages joined as described in store.h) into chunks whose spans
// index that text exactly.
std::vector<NewChunk> chunk_document(const std::vector<std::string>& pages, int target_tokens,
                                     int overlap_tokens);
// The document text: pages joined with "\n\f" between them (see store.h).
std::string join_pages(const std::vector<std::string>& pages);

// ---- the pipeline ----

// One event per finished job, delivered on the worker's thread (serialized by a mutex).
struct JobEvent {
    JobRow job;  // state done or failed, with result / error
    double seconds = 0;
};

struct IngestOptions {
    std::string collection;  // for files found by expand_paths
    bool recursive = true;
};

// Expands files and folders (recursively) into absolute file paths, sorted. In folders,
// hidden entries are skipped, and so are files whose extension is not a supported one
// (.pdf .txt .text .md .markdown) and extension-less files that do not start like text
// (LICENSE and NOTES are taken, programs are not); those are returned in *skipped. Files named explicitly are always taken. Paths that do not exist
// are returned in *missing.
std::vector<std::string> expand_paths(const std::vector<std::string>& paths,
                                      std::vector<std::string>* missing,
                                      std::vector<std::string>* skipped = nullptr);
// True for the extensions ingestion reads without sniffing.
bool is_supported_extension(const std::string& path);

// Runs cfg.workers threads that claim pending jobs from the store in DATA_DIR until none
// is left (or stop becomes true), parse, chunk and store each document. Each worker owns
// its own Store connection. Returns the number of jobs processed.
int run_ingest_workers(const Config& cfg, const std::function<void(const JobEvent&)>& on_done,
                       const std::atomic<bool>* stop = nullptr);

}  // namespace ragd
