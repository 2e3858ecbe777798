// pdf: PDF text extraction in a child process, so that a malformed or hostile PDF can only
// fail its own job.
//
// The parent (parse_pdf) spawns `EXE __pdf-worker FILE --mem BYTES --cpu SECONDS` in its own
// process group, stdin and stderr on /dev/null, stdout on a pipe, and reads the pipe under a
// wall-clock deadline. The child (pdf_worker_main) limits its address space, CPU time and
// core dumps, opens FILE with poppler-cpp and writes, in order:
//
//   "RAGDPDF1"                          magic, 8 bytes
//   record...                           type: 1 byte | length: u32 little-endian | payload
//     'P'  the text of one page, UTF-8, page 1 first
//     'D'  done; payload = number of pages written (u32 little-endian); the last record
//     'E'  failure; payload = a one-line message; the last record
//
// The parent trusts nothing it reads: every length is bounded, the page count is checked and
// the text is repaired as UTF-8. Every failure (spawn, timeout, crash, limit, bad framing,
// exit status) becomes a ragd::Error naming the file; the child's whole process group is
// killed on any early exit, and the child is always reaped before parse_pdf returns.
#include "ingest/pdf.h"

#include <fcntl.h>
#include <poll.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "ingest/ingest.h"

extern char** environ;

namespace ragd {

namespace {

constexpr char kMagic[8] = {'R', 'A', 'G', 'D', 'P', 'D', 'F', '1'};
constexpr size_t kHeader = 5;               // type + u32 length
constexpr uint32_t kMaxMessage = 64 << 10;  // longest 'E' payload accepted
// Most pages a PDF may have. Each page costs a string and a row however empty it is, so a
// hostile file of a million tiny page objects is refused rather than stored.
constexpr uint32_t kMaxPages = 100000;
constexpr int64_t kTextFactor = 4;          // text allowed per byte of the file limit

uint32_t get_u32(const char* p) {
    const unsigned char* u = reinterpret_cast<const unsigned char*>(p);
    return uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
}

// ---- child ----

bool write_all(const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(1, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

bool write_record(char type, const char* data, size_t len) {
    char h[kHeader] = {type, char(len), char(len >> 8), char(len >> 16), char(len >> 24)};
    return write_all(h, kHeader) && write_all(data, len);
}

int worker_fail(const std::string& message) {
    std::string m = message.substr(0, 1000);
    for (char& c : m)
        if (c == '\n' || c == '\r') c = ' ';
    return write_record('E', m.data(), m.size()) ? 1 : 3;
}

void quiet(const std::string&, void*) {}

// Address-space limits break sanitizer runtimes, which reserve terabytes of shadow memory.
bool sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

void set_limit(int resource, rlim_t soft, rlim_t hard) {
    struct rlimit rl;
    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    setrlimit(resource, &rl);  // best effort: a limit above the inherited hard one fails
}

// ---- parent ----

// Owns a file descriptor.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Owns a child process: kills its process group and reaps it unless reaped already.
struct Child {
    pid_t pid = -1;
    bool reaped = false;
    int status = 0;

    void kill_group() {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);  // in case it is not (yet) in its own group
    }
    void reap() {
        while (!reaped) {
            pid_t r = ::waitpid(pid, &status, 0);
            if (r == pid || (r < 0 && errno != EINTR)) reaped = true;  // ECHILD: SIGCHLD ignored
            if (r < 0 && errno == ECHILD) status = 0;
        }
    }
    // Waits for the child to exit until DEADLINE; false if it is still running then.
    bool wait_until(std::chrono::steady_clock::time_point deadline) {
        auto nap = std::chrono::microseconds(200);
        while (!reaped) {
            pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid || (r < 0 && errno != EINTR)) {
                if (r < 0) status = 0;
                reaped = true;
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(nap);
            nap = std::min(nap * 2, std::chrono::microseconds(20000));
        }
        return true;
    }
    ~Child() {
        if (pid > 0 && !reaped) {
            kill_group();
            reap();
        }
    }
};

// Incremental decoder of the worker's output.
struct Decoder {
    int64_t max_record = 0;  // longest 'P' payload accepted
    int64_t max_total = 0;   // most bytes accepted in all
    std::string buf;         // undecoded bytes start at pos
    size_t pos = 0;
    int64_t total = 0;
    bool magic = false;
    bool finished = false;  // a 'D' or 'E' record was decoded
    bool failed = false;    // the child sent 'E' (message) ...
    std::string message;
    uint32_t done_pages = 0;
    std::string bad;  // ... or the framing is broken (what is wrong)
    std::vector<std::string> pages;

    // Adds bytes and decodes every complete record. Returns false once the output is
    // unacceptable (bad is set).
    bool feed(const char* p, size_t n) {
        total += static_cast<int64_t>(n);
        if (total > max_total)
            return set_bad("more than " + std::to_string(max_total) + " bytes of text");
        if (finished) return set_bad("data after the last record");
        buf.append(p, n);
        if (!magic) {
            if (buf.size() < sizeof kMagic) {
                if (buf.compare(0, buf.size(), kMagic, buf.size()) != 0)
                    return set_bad("no header");
                return true;
            }
            if (buf.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0)
                return set_bad("no header");
            magic = true;
            pos = sizeof kMagic;
        }
        while (!finished && pos < buf.size()) {
            char type = buf[pos];
            if (type != 'P' && type != 'E' && type != 'D') return set_bad("unknown record type");
            if (buf.size() - pos < kHeader) break;  // wait for the length
            uint32_t len = get_u32(buf.data() + pos + 1);
            if (type == 'P' && len > max_record)
                return set_bad("page of " + std::to_string(len) + " bytes");
            if (type == 'E' && len > kMaxMessage)
                return set_bad("error message of " + std::to_string(len) + " bytes");
            if (type == 'D' && len != 4) return set_bad("bad end record");
            if (buf.size() - pos - kHeader < len) break;  // wait for the rest
            const char* payload = buf.data() + pos + kHeader;
            if (type == 'P') {
                if (pages.size() >= kMaxPages) return set_bad("more than the page limit");
                pages.emplace_back(payload, len);
            } else if (type == 'E') {
                message.assign(payload, len);
                failed = finished = true;
            } else {
                done_pages = get_u32(payload);
                finished = true;
            }
            pos += kHeader + len;
        }
        if (finished && pos != buf.size()) return set_bad("data after the last record");
        if (pos > (1 << 20) && pos * 2 > buf.size()) {  // drop decoded bytes now and then
            buf.erase(0, pos);
            pos = 0;
        }
        return true;
    }
    bool set_bad(const std::string& what) {
        if (bad.empty()) bad = what;
        return false;
    }
};

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);  // thread-safe, unlike strsignal
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

int pdf_worker_main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s __pdf-worker FILE [--mem BYTES] [--cpu SECONDS]\n",
                     argc > 0 ? argv[0] : "ragd");
        return 2;
    }
    const std::string file = argv[2];
    long long mem = 0, cpu = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--mem") == 0)
            mem = std::atoll(argv[i + 1]);
        else if (std::strcmp(argv[i], "--cpu") == 0)
            cpu = std::atoll(argv[i + 1]);
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the parent
    set_limit(RLIMIT_CORE, 0, 0);
    if (cpu > 0) set_limit(RLIMIT_CPU, rlim_t(cpu), rlim_t(cpu + 1));  // SIGXCPU, then SIGKILL
    if (mem > 0 && !sanitized()) set_limit(RLIMIT_AS, rlim_t(mem), rlim_t(mem));
    poppler::set_debug_error_function(quiet, nullptr);

    if (!write_all(kMagic, sizeof kMagic)) return 3;
    try {
        std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(file));
        if (!doc) return worker_fail("malformed PDF (poppler cannot open it)");
        if (doc->is_locked()) return worker_fail("encrypted PDF (password required)");
        int n = doc->pages();
        if (n <= 0) return worker_fail("PDF has no pages");
        if (static_cast<uint32_t>(n) > kMaxPages)
            return worker_fail("PDF has " + std::to_string(n) + " pages, more than the " +
                               std::to_string(kMaxPages) + " ragd accepts");
        for (int i = 0; i < n; ++i) {
            std::string text;
            std::unique_ptr<poppler::page> page(doc->create_page(i));
            if (page) {
                poppler::byte_array u8 =
                    page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout)
                        .to_utf8();
                text.assign(u8.data(), u8.size());
            }
            if (!write_record('P', text.data(), text.size())) return 3;
        }
        char count[4] = {char(n), char(n >> 8), char(n >> 16), char(n >> 24)};
        return write_record('D', count, sizeof count) ? 0 : 3;
    } catch (const std::bad_alloc&) {
        return worker_fail("PDF needs more than " + std::to_string(mem >> 20) + " MiB of memory");
    } catch (const std::exception& e) {
        return worker_fail(std::string("PDF parser failed: ") + e.what());
    } catch (...) {
        return worker_fail("PDF parser failed");
    }
}

std::vector<std::string> parse_pdf(const std::string& path, const std::string& name,
                                   const Config& cfg) {
    auto fail = [&](Error::Code code, const std::string& what) -> Error {
        return Error(code, name + ": " + what);
    };
    const int timeout_s = cfg.pdf_timeout_s > 0 ? cfg.pdf_timeout_s : 1;

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        throw fail(Error::Code::IO, std::string("cannot create pipe: ") + std::strerror(errno));
    Fd rd{p[0]}, wr{p[1]};

    std::string exe = cfg.pdf_worker_exe, mode = "__pdf-worker", file = path, mem_flag = "--mem",
                mem = std::to_string(cfg.pdf_memory_bytes), cpu_flag = "--cpu",
                cpu = std::to_string(timeout_s + 1);
    char* argv[] = {exe.data(), mode.data(),     file.data(), mem_flag.data(),
                    mem.data(), cpu_flag.data(), cpu.data(),  nullptr};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, wr.fd, 1);  // the copy on fd 1 loses O_CLOEXEC
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);  // poppler chatters
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);  // servers often ignore it; the child should die of it
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);  // own group, so a timeout kills its helpers too
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    Child child;
    int rc = ::posix_spawn(&child.pid, exe.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        child.pid = -1;
        throw fail(Error::Code::IO, "cannot start PDF worker " + exe + ": " + std::strerror(rc));
    }
    ::close(wr.fd);
    wr.fd = -1;

    Decoder dec;
    dec.max_total = kTextFactor * std::max<int64_t>(cfg.max_file_bytes, 1 << 20);
    dec.max_record = std::min<int64_t>(dec.max_total, UINT32_MAX);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    bool timed_out = false;
    std::vector<char> chunk(1 << 16);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd = {rd.fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
        if (r < 0 && errno != EINTR)
            throw fail(Error::Code::IO, std::string("poll failed: ") + std::strerror(errno));
        if (r <= 0) continue;
        ssize_t n = ::read(rd.fd, chunk.data(), chunk.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) throw fail(Error::Code::IO, std::string("read failed: ") + std::strerror(errno));
        if (n == 0) break;  // EOF: the child closed its stdout (normally by exiting)
        if (!dec.feed(chunk.data(), static_cast<size_t>(n))) break;
    }
    ::close(rd.fd);
    rd.fd = -1;
    if (timed_out || !dec.bad.empty()) {
        child.kill_group();
        child.reap();
    } else if (!child.wait_until(std::max(
                   deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2)))) {
        timed_out = true;  // it closed its output but does not exit
        child.kill_group();
        child.reap();
    }

    const int st = child.status;
    if (!dec.bad.empty())
        throw fail(Error::Code::Corrupt, "PDF worker sent malformed output (" + dec.bad + ")");
    if (dec.failed) {
        std::string m = dec.message;
        repair_utf8(m);
        throw fail(Error::Code::Corrupt, m);
    }
    if (timed_out)
        throw fail(Error::Code::Corrupt,
                   "PDF parsing timed out after " + std::to_string(timeout_s) + " s");
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        if (sig == SIGXCPU || sig == SIGKILL)
            throw fail(Error::Code::Corrupt, "PDF worker killed by " + signal_name(sig) +
                                                 " (CPU or memory limit exceeded?)");
        throw fail(Error::Code::Corrupt, "PDF worker crashed (" + signal_name(sig) + ")");
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        throw fail(Error::Code::Corrupt,
                   "PDF worker failed (exit status " + std::to_string(WEXITSTATUS(st)) + ")");
    if (!dec.finished)
        throw fail(Error::Code::Corrupt, "PDF worker output ended early (truncated)");
    if (dec.done_pages != dec.pages.size())
        throw fail(Error::Code::Corrupt, "PDF worker sent malformed output (page count)");

    std::vector<std::string> pages = std::move(dec.pages);
    bool any_text = false;
    for (std::string& page : pages) {
        repair_utf8(page);
        normalize_newlines(page);
        // poppler ends each page with "\f"; inside a page it would read as a page separator.
        std::replace(page.begin(), page.end(), '\f', '\n');
        size_t end = page.size();
        while (end > 0 && (page[end - 1] == '\n' || page[end - 1] == ' ' || page[end - 1] == '\t'))
            --end;
        page.resize(end);
        if (!is_blank(page)) any_text = true;
    }
    if (!any_text) throw fail(Error::Code::Corrupt, "no extractable text (scanned PDF?)");
    strip_page_furniture(pages);
    return pages;
}

}  // namespace ragd
