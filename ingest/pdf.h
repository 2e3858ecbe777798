// pdf: private to ingest. PDF text extraction in an isolated child process (pdf.cpp), and
// the text clean-up parse.cpp and pdf.cpp share.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ragd {

// Extracts the text of each page of the PDF at PATH by running cfg.pdf_worker_exe as
// `EXE __pdf-worker PATH --mem BYTES --cpu SECONDS` under cfg.pdf_timeout_s of wall-clock
// time. NAME is the file name used in error messages. Returns one string per page: valid
// UTF-8, LF line ends, no form feed, no trailing whitespace. Throws Error: Corrupt (malformed,
// encrypted, no pages, no text, worker crashed, timed out or sent malformed output), IO (the worker
// could not be started). Thread-safe: each call runs its own child, which is always reaped before
// returning.
std::vector<std::string> parse_pdf(const std::string& path, const std::string& name,
                                   const Config& cfg);

// Removes running headers, footers and page numbers from PDF pages: lines among the first
// or last two non-blank lines of a page that repeat, digits aside, on at least half of the
// pages (two at least), and bare page numbers ("7", "Page 7 of 9", "- 7 -") there.
// Single-page documents are left alone.
void strip_page_furniture(std::vector<std::string>& pages);

// Turns CRLF and lone CR line ends into LF, in place.
void normalize_newlines(std::string& s);

// True when s holds only ASCII whitespace (or nothing).
bool is_blank(const std::string& s);

}  // namespace ragd
