// parse: one file -> pages of UTF-8 text.
//
// The format comes from the extension: .pdf goes to the PDF child process (pdf.cpp);
// .txt/.text are "text" and .md/.markdown "markdown", one page each. Anything else is
// sniffed: a PDF header makes it a PDF, text-looking bytes make it "text", the rest is
// rejected as Unsupported. Text is cleaned the same way whatever its extension: a UTF-8 BOM
// is dropped, invalid UTF-8 bytes become U+FFFD, CRLF and lone CR become LF; binary content
// is rejected even when the file is named .txt.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ingest/ingest.h"
#include "ingest/pdf.h"

namespace ragd {

namespace {

constexpr size_t kSniffBytes = 64 << 10;  // looks_like_text examines this much

enum class Format { Pdf, Text, Markdown, Unknown };

Format format_of(const std::string& name) {
    size_t slash = name.find_last_of('/');
    std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    size_t dot = base.find_last_of('.');
    if (dot == std::string::npos || dot == 0) return Format::Unknown;  // "LICENSE", ".bashrc"
    std::string ext = base.substr(dot + 1);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == "pdf") return Format::Pdf;
    if (ext == "txt" || ext == "text") return Format::Text;
    if (ext == "md" || ext == "markdown") return Format::Markdown;
    return Format::Unknown;
}

bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode table 3-7: no
// overlongs, no surrogates, nothing above U+10FFFF), or 0 if the bytes there are not one.
size_t utf8_len(const unsigned char* s, size_t n, size_t i) {
    unsigned char c = s[i];
    if (c < 0x80) return 1;
    auto cont = [&](size_t k, unsigned char lo, unsigned char hi) {
        return i + k < n && s[i + k] >= lo && s[i + k] <= hi;
    };
    if (c >= 0xC2 && c <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

[[noreturn]] void fail(Error::Code code, const std::string& name, const std::string& what) {
    throw Error(code, name + ": " + what);
}

ParsedDocument parse_text(const std::string& name, const std::string& bytes, const char* kind) {
    if (!looks_like_text(bytes))
        fail(Error::Code::Unsupported, name, "is not text (binary content)");
    size_t skip = bytes.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    std::string text = bytes.substr(skip);
    // The sniff saw only the start; binary further in shows up as many repairs.
    if (repair_utf8(text) * 10 > text.size())
        fail(Error::Code::Unsupported, name, "is not text (binary content)");
    normalize_newlines(text);
    if (is_blank(text)) fail(Error::Code::InvalidArgument, name, "empty (only whitespace)");
    ParsedDocument doc;
    doc.kind = kind;
    doc.pages.push_back(std::move(text));
    return doc;
}

// Removes a file on scope exit.
struct Unlinker {
    std::string path;
    ~Unlinker() {
        if (!path.empty()) ::unlink(path.c_str());
    }
};

ParsedDocument parse_pdf_bytes(const std::string& name, const std::string& bytes,
                               const Config& cfg) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/ragd-pdf-XXXXXX.pdf";
    int fd = ::mkstemps(templ.data(), 4);
    if (fd < 0)
        fail(Error::Code::IO, name,
             std::string("cannot create temp file: ") + std::strerror(errno));
    Unlinker unlinker{templ};
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            fail(Error::Code::IO, name,
                 std::string("cannot write temp file: ") + std::strerror(err));
        }
        done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0)
        fail(Error::Code::IO, name, std::string("cannot write temp file: ") + std::strerror(errno));
    ParsedDocument doc;
    doc.kind = "pdf";
    doc.pages = parse_pdf(templ, name, cfg);
    return doc;
}

// Opens PATH for reading and checks it is a regular, non-empty file within the size limit.
// Returns the descriptor (O_CLOEXEC) and its size.
int open_input(const std::string& path, const Config& cfg, int64_t* size) {
    // O_NONBLOCK so that a FIFO does not block the open; it is rejected below.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR) fail(Error::Code::NotFound, path, "no such file");
        fail(Error::Code::IO, path, std::string("cannot open: ") + std::strerror(err));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        fail(Error::Code::IO, path, std::string("cannot stat: ") + std::strerror(err));
    }
    const char* problem = nullptr;
    if (S_ISDIR(st.st_mode))
        problem = "is a directory";
    else if (!S_ISREG(st.st_mode))
        problem = "not a regular file";
    else if (st.st_size == 0)
        problem = "empty file";
    if (problem) {
        ::close(fd);
        fail(Error::Code::InvalidArgument, path, problem);
    }
    if (st.st_size > cfg.max_file_bytes) {
        ::close(fd);
        fail(Error::Code::InvalidArgument, path,
             "file too large (" + std::to_string(st.st_size) + " bytes, limit " +
                 std::to_string(cfg.max_file_bytes) + ")");
    }
    *size = st.st_size;
    return fd;
}

// Reads the whole of FD (a regular file of about SIZE bytes), at most LIMIT bytes.
std::string read_fd(int fd, const std::string& path, int64_t size, int64_t limit) {
    std::string bytes(static_cast<size_t>(size), '\0');
    size_t got = 0;
    for (;;) {
        if (got == bytes.size()) {
            if (static_cast<int64_t>(got) > limit) break;
            bytes.resize(got + std::max<size_t>(got / 2, 4096));  // the file grew as we read
        }
        ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(Error::Code::IO, path, std::string("read failed: ") + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    bytes.resize(got);
    if (static_cast<int64_t>(got) > limit)
        fail(Error::Code::InvalidArgument, path,
             "file too large (limit " + std::to_string(limit) + " bytes)");
    if (got == 0) fail(Error::Code::InvalidArgument, path, "empty file");
    return bytes;
}

ParsedDocument parse_any(const std::string& name, const std::string& bytes, const Config& cfg) {
    Format f = format_of(name);
    if (f == Format::Unknown && bytes.compare(0, 5, "%PDF-") == 0) f = Format::Pdf;
    switch (f) {
        case Format::Pdf:
            return parse_pdf_bytes(name, bytes, cfg);
        case Format::Text:
            return parse_text(name, bytes, "text");
        case Format::Markdown:
            return parse_text(name, bytes, "markdown");
        case Format::Unknown:
            break;
    }
    if (!looks_like_text(bytes))
        fail(Error::Code::Unsupported, name, "unsupported format (binary file)");
    return parse_text(name, bytes, "text");
}

}  // namespace

void normalize_newlines(std::string& s) {
    if (s.find('\r') == std::string::npos) return;
    size_t out = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            s[out++] = '\n';
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            s[out++] = s[i];
        }
    }
    s.resize(out);
}

bool is_blank(const std::string& s) {
    for (char c : s)
        if (!is_space(static_cast<unsigned char>(c))) return false;
    return true;
}

size_t repair_utf8(std::string& s) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size(), i = 0;
    // Fast path: most text is valid; find the first bad byte without copying.
    while (i < n) {
        size_t len = p[i] == 0 ? 0 : utf8_len(p, n, i);
        if (len == 0) break;
        i += len;
    }
    if (i == n) return 0;
    std::string out;
    out.reserve(n + 16);
    out.append(s, 0, i);
    size_t replaced = 0;
    while (i < n) {
        size_t len = p[i] == 0 ? 0 : utf8_len(p, n, i);
        if (len == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD for each bad byte
            ++replaced;
            ++i;
        } else {
            out.append(s, i, len);
            i += len;
        }
    }
    s.swap(out);
    return replaced;
}

bool looks_like_text(const std::string& bytes) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t n = std::min(bytes.size(), kSniffBytes);
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == 0) return false;  // NUL: binary (or UTF-16, which is not handled)
        if (c < 0x80) {
            // Control characters other than whitespace, backspace and escape (ANSI colours).
            if ((c < 0x20 && !is_space(c) && c != 0x08 && c != 0x1B) || c == 0x7F) ++bad;
            ++i;
            continue;
        }
        size_t len = utf8_len(p, bytes.size(), i);
        if (len == 0) {
            ++bad;
            len = 1;
        }
        i += len;
    }
    return bad * 10 <= n;  // up to 10% odd bytes: text with some damage, repaired later
}

std::string read_input_file(const std::string& path, const Config& cfg) {
    int64_t size = 0;
    int fd = open_input(path, cfg, &size);
    std::string bytes;
    try {
        bytes = read_fd(fd, path, size, cfg.max_file_bytes);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return bytes;
}

ParsedDocument parse_file(const std::string& path, const Config& cfg) {
    if (format_of(path) == Format::Pdf) {
        int64_t size = 0;
        ::close(open_input(path, cfg, &size));  // the child reads it; this checks it can be
        ParsedDocument doc;
        doc.kind = "pdf";
        doc.pages = parse_pdf(path, path, cfg);
        return doc;
    }
    std::string bytes = read_input_file(path, cfg);
    if (format_of(path) == Format::Unknown && bytes.compare(0, 5, "%PDF-") == 0) {
        ParsedDocument doc;  // a PDF without its extension: parse the file itself
        doc.kind = "pdf";
        doc.pages = parse_pdf(path, path, cfg);
        return doc;
    }
    return parse_any(path, bytes, cfg);
}

ParsedDocument parse_bytes(const std::string& name, const std::string& bytes, const Config& cfg) {
    if (bytes.empty()) fail(Error::Code::InvalidArgument, name, "empty file");
    if (static_cast<int64_t>(bytes.size()) > cfg.max_file_bytes)
        fail(Error::Code::InvalidArgument, name,
             "file too large (" + std::to_string(bytes.size()) + " bytes, limit " +
                 std::to_string(cfg.max_file_bytes) + ")");
    return parse_any(name, bytes, cfg);
}

}  // namespace ragd
