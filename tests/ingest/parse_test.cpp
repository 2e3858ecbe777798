// parse_file / parse_bytes: formats, text clean-up, every bad input, and the PDF child
// process (real poppler through this test binary as the worker, and fake workers written as
// shell scripts that hang, crash or send garbage).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ingest/ingest.h"
#include "tests/ingest/pdf_fixture.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using test::make_pdf;
using test::PdfOptions;
using test::TempDir;
using test::write_file;

Config test_config() {
    Config cfg;
    cfg.pdf_worker_exe = "/proc/self/exe";  // this test binary dispatches __pdf-worker
    cfg.pdf_timeout_s = 60;
    return cfg;
}

// Runs fn, expecting a ragd::Error with the given code whose message contains `needle`.
template <typename Fn>
void expect_error(Fn fn, Error::Code code, const std::string& needle) {
    try {
        fn();
        ADD_FAILURE() << "no error thrown; expected one containing '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line";
    }
}

int count_open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

// True when this process has no child left, running or zombie.
bool no_children() {
    return waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

std::string write_script(const TempDir& dir, const std::string& name, const std::string& body) {
    std::string path = dir / name;
    write_file(path, "#!/bin/sh\n" + body + "\n");
    chmod(path.c_str(), 0755);
    return path;
}

// ---- text ----

TEST(ParseText, PlainTextIsOnePage) {
    TempDir dir;
    write_file(dir / "a.txt", "Hello world.\nSecond line.\n");
    ParsedDocument doc = parse_file(dir / "a.txt", test_config());
    EXPECT_EQ(doc.kind, "text");
    ASSERT_EQ(doc.pages.size(), 1u);
    EXPECT_EQ(doc.pages[0], "Hello world.\nSecond line.\n");
}

TEST(ParseText, ExtensionsDecideKind) {
    TempDir dir;
    Config cfg = test_config();
    write_file(dir / "a.md", "# Title\n\nBody.\n");
    write_file(dir / "b.MARKDOWN", "# Title\n");
    write_file(dir / "c.text", "plain\n");
    write_file(dir / "d.TXT", "plain\n");
    EXPECT_EQ(parse_file(dir / "a.md", cfg).kind, "markdown");
    EXPECT_EQ(parse_file(dir / "b.MARKDOWN", cfg).kind, "markdown");
    EXPECT_EQ(parse_file(dir / "c.text", cfg).kind, "text");
    EXPECT_EQ(parse_file(dir / "d.TXT", cfg).kind, "text");
    EXPECT_EQ(parse_file(dir / "a.md", cfg).pages[0], "# Title\n\nBody.\n");
}

TEST(ParseText, BomStrippedAndCrlfNormalized) {
    Config cfg = test_config();
    ParsedDocument doc = parse_bytes("w.txt", "\xEF\xBB\xBFline one\r\nline two\r\rold mac\r", cfg);
    ASSERT_EQ(doc.pages.size(), 1u);
    EXPECT_EQ(doc.pages[0], "line one\nline two\n\nold mac\n");
}

TEST(ParseText, InvalidUtf8IsRepaired) {
    TempDir dir;
    write_file(dir / "latin1.txt", "caf\xE9 au lait, na\xEFve r\xE9sum\xE9 of the whole thing\n");
    ParsedDocument doc = parse_file(dir / "latin1.txt", test_config());
    EXPECT_EQ(doc.pages[0],
              "caf\xEF\xBF\xBD au lait, na\xEF\xBF\xBDve r\xEF\xBF\xBDsum\xEF\xBF\xBD of the whole "
              "thing\n");
}

TEST(ParseText, BinaryNamedTxtIsRejected) {
    TempDir dir;
    std::string png = "\x89PNG\r\n\x1a\n";
    static const char ihdr[] = "\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    png += std::string(ihdr, sizeof ihdr - 1);
    std::mt19937 rng(1);
    for (int i = 0; i < 4000; ++i) png += static_cast<char>(rng());
    write_file(dir / "image.txt", png);
    expect_error([&] { parse_file(dir / "image.txt", test_config()); }, Error::Code::Unsupported,
                 "is not text (binary content)");
    // Binary without a single NUL: random high bytes are mostly invalid UTF-8.
    std::string noisy;
    for (int i = 0; i < 4000; ++i) noisy += static_cast<char>(0x80 | (rng() & 0x7F));
    // Text at the start, binary after what the sniffer looks at.
    std::string late = std::string(70000, 'a') + std::string(200000, '\0');
    expect_error([&] { parse_bytes("late.txt", late, test_config()); }, Error::Code::Unsupported,
                 "late.txt: is not text");
    expect_error([&] { parse_bytes("noisy.md", noisy, test_config()); }, Error::Code::Unsupported,
                 "noisy.md: is not text");
}

TEST(ParseText, SniffsFilesWithoutKnownExtension) {
    TempDir dir;
    Config cfg = test_config();
    write_file(dir / "LICENSE", "MIT License\n\nPermission is hereby granted, free of charge...\n");
    write_file(dir / "COPYING", "GNU GENERAL PUBLIC LICENSE\n");
    write_file(dir / "notes.cfg", "key = value\n");
    for (const char* name : {"LICENSE", "COPYING", "notes.cfg"}) {
        ParsedDocument doc = parse_file(dir / name, cfg);
        EXPECT_EQ(doc.kind, "text") << name;
        EXPECT_EQ(doc.pages.size(), 1u) << name;
    }
    write_file(dir / "program", std::string("\x7f"
                                            "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
                                            16));
    expect_error([&] { parse_file(dir / "program", cfg); }, Error::Code::Unsupported,
                 "binary file");
    write_file(dir / "archive.zip", std::string("PK\x03\x04\x14\0\0\0\x08\0", 10));
    expect_error([&] { parse_file(dir / "archive.zip", cfg); }, Error::Code::Unsupported,
                 "binary file");
}

TEST(ParseText, EmptyAndWhitespaceOnly) {
    TempDir dir;
    Config cfg = test_config();
    write_file(dir / "empty.txt", "");
    write_file(dir / "blank.md", " \n\t\r\n  \n");
    write_file(dir / "bom-only.txt", "\xEF\xBB\xBF\n");
    expect_error([&] { parse_file(dir / "empty.txt", cfg); }, Error::Code::InvalidArgument,
                 "empty");
    expect_error([&] { parse_file(dir / "blank.md", cfg); }, Error::Code::InvalidArgument, "empty");
    expect_error([&] { parse_file(dir / "bom-only.txt", cfg); }, Error::Code::InvalidArgument,
                 "empty");
    expect_error([&] { parse_bytes("up.txt", "", cfg); }, Error::Code::InvalidArgument, "empty");
    write_file(dir / "empty.pdf", "");
    expect_error([&] { parse_file(dir / "empty.pdf", cfg); }, Error::Code::InvalidArgument,
                 "empty");
}

TEST(ParseText, MissingPathIsNotFound) {
    TempDir dir;
    write_file(dir / "file.txt", "x");
    expect_error([&] { parse_file(dir / "nope.txt", test_config()); }, Error::Code::NotFound,
                 dir / "nope.txt" + ": no such file");
    expect_error([&] { parse_file(dir / "file.txt/below.txt", test_config()); },
                 Error::Code::NotFound, "no such file");
    expect_error([&] { parse_file(dir / "nope.pdf", test_config()); }, Error::Code::NotFound,
                 "no such file");
}

TEST(ParseText, DirectoryAndFifoAreInvalid) {
    TempDir dir;
    expect_error([&] { parse_file(dir.path(), test_config()); }, Error::Code::InvalidArgument,
                 "is a directory");
    ASSERT_EQ(mkfifo((dir / "pipe.txt").c_str(), 0600), 0);
    // Must not block waiting for a writer.
    expect_error([&] { parse_file(dir / "pipe.txt", test_config()); }, Error::Code::InvalidArgument,
                 "not a regular file");
}

// Permission denied. Root reads anything, so as root the check runs in a forked child that
// has dropped to the unprivileged uid/gid 65534 (nobody).
TEST(ParseText, UnreadableFileIsIO) {
    TempDir dir;
    chmod(dir.path().c_str(), 0755);
    write_file(dir / "secret.txt", "text");
    write_file(dir / "secret.pdf", make_pdf({"text"}));
    chmod((dir / "secret.txt").c_str(), 0);
    chmod((dir / "secret.pdf").c_str(), 0);
    auto denied = [&](const std::string& path) {
        try {
            parse_file(path, test_config());
        } catch (const Error& e) {
            return e.code() == Error::Code::IO &&
                   std::string(e.what()) == path + ": cannot open: Permission denied";
        }
        return false;
    };
    if (geteuid() != 0) {
        EXPECT_TRUE(denied(dir / "secret.txt"));
        EXPECT_TRUE(denied(dir / "secret.pdf"));
        return;
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(77);
        _exit(denied(dir / "secret.txt") && denied(dir / "secret.pdf") ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot drop root privileges here";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "unreadable files not reported as IO errors";
}

// What the OS refuses even to root: a path that cannot be resolved (symlink loop).
TEST(ParseText, UnopenablePathIsIO) {
    TempDir dir;
    ASSERT_EQ(symlink("loop-b.txt", (dir / "loop-a.txt").c_str()), 0);
    ASSERT_EQ(symlink("loop-a.txt", (dir / "loop-b.txt").c_str()), 0);
    expect_error([&] { parse_file(dir / "loop-a.txt", test_config()); }, Error::Code::IO,
                 "cannot open");
}

TEST(ParseText, TooLarge) {
    TempDir dir;
    Config cfg = test_config();
    cfg.max_file_bytes = 100;
    write_file(dir / "big.txt", std::string(101, 'a'));
    write_file(dir / "ok.txt", std::string(100, 'a'));
    expect_error([&] { parse_file(dir / "big.txt", cfg); }, Error::Code::InvalidArgument,
                 "too large");
    expect_error([&] { parse_bytes("big.txt", std::string(101, 'a'), cfg); },
                 Error::Code::InvalidArgument, "too large");
    EXPECT_EQ(parse_file(dir / "ok.txt", cfg).pages[0].size(), 100u);
}

TEST(ParseText, HugeSingleLine) {
    TempDir dir;
    std::string line;
    line.reserve(20 << 20);
    const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};
    for (size_t i = 0; line.size() < (20u << 20); ++i) {
        line += words[(i * 7 + i / 3) % 8];
        line += ' ';
    }
    line.back() = 'x';  // no newline anywhere
    write_file(dir / "line.txt", line);
    ParsedDocument doc = parse_file(dir / "line.txt", test_config());
    ASSERT_EQ(doc.pages.size(), 1u);
    EXPECT_EQ(doc.pages[0].size(), line.size());
    std::vector<NewChunk> chunks = chunk_document(doc.pages, 200, 40);
    ASSERT_GT(chunks.size(), 1000u);
    EXPECT_EQ(chunks.front().start, 0);
    EXPECT_EQ(chunks.back().end, static_cast<int64_t>(line.size()));
    for (size_t k = 0; k + 1 < chunks.size(); ++k) {
        ASSERT_LE(chunks[k].n_tokens, 200) << k;
        ASSERT_GE(chunks[k].n_tokens, 180) << k;  // word breaks everywhere: nearly full
    }
}

TEST(ParseBytes, NameDecidesFormat) {
    Config cfg = test_config();
    EXPECT_EQ(parse_bytes("notes.md", "# x\n", cfg).kind, "markdown");
    EXPECT_EQ(parse_bytes("dir/README", "hello\n", cfg).kind, "text");
    ParsedDocument pdf = parse_bytes("upload.pdf", make_pdf({"Uploaded page."}), cfg);
    EXPECT_EQ(pdf.kind, "pdf");
    ASSERT_EQ(pdf.pages.size(), 1u);
    EXPECT_NE(pdf.pages[0].find("Uploaded page."), std::string::npos);
    // A PDF without its extension is recognised by its header.
    EXPECT_EQ(parse_bytes("scan-0001", make_pdf({"No extension."}), cfg).kind, "pdf");
}

TEST(ParseBytes, PdfTempFileIsRemovedAndErrorsNameTheUpload) {
    TempDir dir;
    std::string tmp = dir / "tmp";
    ASSERT_EQ(mkdir(tmp.c_str(), 0700), 0);
    const char* old = std::getenv("TMPDIR");
    std::string saved = old ? old : "";
    setenv("TMPDIR", tmp.c_str(), 1);
    Config cfg = test_config();
    parse_bytes("good.pdf", make_pdf({"Some text."}), cfg);
    std::string bytes = make_pdf({"Some text."});
    expect_error([&] { parse_bytes("bad.pdf", bytes.substr(0, 30), cfg); }, Error::Code::Corrupt,
                 "bad.pdf: ");
    if (old)
        setenv("TMPDIR", saved.c_str(), 1);
    else
        unsetenv("TMPDIR");
    DIR* d = opendir(tmp.c_str());
    int left = 0;
    while (dirent* e = readdir(d)) left += e->d_name[0] != '.';
    closedir(d);
    EXPECT_EQ(left, 0);
}

// ---- repair_utf8 / looks_like_text ----

TEST(Utf8, RepairReplacesEachBadByte) {
    struct Case {
        std::string in, out;
        size_t replaced;
    } cases[] = {
        {"plain ascii", "plain ascii", 0},
        {"\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80",
         "\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80", 0},
        {"a\xFF"
         "b",
         "a\xEF\xBF\xBD"
         "b",
         1},
        {"overlong \xC0\x80", "overlong \xEF\xBF\xBD\xEF\xBF\xBD", 2},
        {"surrogate \xED\xA0\x80", "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 3},
        {"too big \xF4\x90\x80\x80", "too big \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 4},
        {"cut at end \xE4\xB8", "cut at end \xEF\xBF\xBD\xEF\xBF\xBD", 2},
        {std::string("nul\0here", 8), "nul\xEF\xBF\xBDhere", 1},
        {"\xEF\xBF\xBD stays", "\xEF\xBF\xBD stays", 0},
    };
    for (const Case& c : cases) {
        std::string s = c.in;
        EXPECT_EQ(repair_utf8(s), c.replaced) << c.in;
        EXPECT_EQ(s, c.out);
        std::string again = s;
        EXPECT_EQ(repair_utf8(again), 0u) << "repaired text is valid";
    }
}

TEST(Utf8, LooksLikeText) {
    EXPECT_TRUE(looks_like_text("Hello, world.\n\tIndented.\f\n"));
    EXPECT_TRUE(looks_like_text("\xEF\xBB\xBFZ\xC3\xBCrich \xE4\xB8\xAD\xE6\x96\x87"));
    EXPECT_TRUE(looks_like_text("\x1b[31mred\x1b[0m log line\n"));
    EXPECT_TRUE(looks_like_text("Mostly fine text with one bad byte \xFF here.\n"));
    EXPECT_FALSE(looks_like_text(std::string("text\0with nul", 13)));
    EXPECT_FALSE(looks_like_text("\x01\x02\x03\x04\x05\x06\x07\x0e\x0f\x10 abc"));
    EXPECT_FALSE(looks_like_text(std::string(1000, '\xFF')));
    EXPECT_FALSE(looks_like_text("\xFF\xFE" + std::string("h\0i\0", 4)));  // UTF-16
}

// ---- PDF through the real worker ----

TEST(ParsePdf, MultiPageTextAndCount) {
    TempDir dir;
    write_file(dir / "doc.pdf", make_pdf({"First page, line one.\nLine (two) of page 1.", "",
                                          "Third page mentions zebras."}));
    ParsedDocument doc = parse_file(dir / "doc.pdf", test_config());
    EXPECT_EQ(doc.kind, "pdf");
    ASSERT_EQ(doc.pages.size(), 3u);
    // poppler's reading order, without its trailing form feed.
    EXPECT_EQ(doc.pages[0], "First page, line one.\nLine (two) of page 1.");
    EXPECT_EQ(doc.pages[1], "");
    EXPECT_EQ(doc.pages[2], "Third page mentions zebras.");
}

TEST(ParsePdf, ChunksKeepPageNumbers) {
    TempDir dir;
    std::vector<std::string> pages;
    for (int p = 1; p <= 6; ++p) {
        std::string text;
        for (int s = 0; s < 4; ++s)
            // Page names in letters: lines that differ only in their digits on every page
            // would read as running headers (strip_page_furniture).
            text += "Sentence " + std::to_string(s) + " on page" + std::string(1, char('a' + p)) +
                    " here.\n";
        pages.push_back(text);
    }
    write_file(dir / "doc.pdf", make_pdf(pages));
    ParsedDocument doc = parse_file(dir / "doc.pdf", test_config());
    ASSERT_EQ(doc.pages.size(), 6u);
    std::vector<NewChunk> chunks = chunk_document(doc.pages, 16, 4);
    ASSERT_GT(chunks.size(), 6u);
    const std::string text = join_pages(doc.pages);
    for (const NewChunk& c : chunks) {
        EXPECT_EQ(text.substr(c.start, c.end - c.start), c.text);
        for (int p = 1; p <= 6; ++p) {
            bool mentioned =
                c.text.find("page" + std::string(1, char('a' + p)) + " ") != std::string::npos;
            if (mentioned) {
                EXPECT_GE(p, c.page_start) << c.text;
                EXPECT_LE(p, c.page_end) << c.text;
            }
        }
    }
    EXPECT_EQ(chunks.back().page_end, 6);
}

TEST(ParsePdf, NoTextIsCorrupt) {
    TempDir dir;
    write_file(dir / "scan.pdf", make_pdf({"", ""}));
    expect_error([&] { parse_file(dir / "scan.pdf", test_config()); }, Error::Code::Corrupt,
                 "no extractable text (scanned PDF?)");
}

TEST(ParsePdf, ZeroPagesIsCorrupt) {
    TempDir dir;
    write_file(dir / "zero.pdf", make_pdf({}));
    expect_error([&] { parse_file(dir / "zero.pdf", test_config()); }, Error::Code::Corrupt,
                 "PDF has no pages");
}

TEST(ParsePdf, TruncatedOrGarbageIsCorrupt) {
    TempDir dir;
    std::string pdf = make_pdf({"Some text on a page."});
    write_file(dir / "head.pdf", pdf.substr(0, 20));
    expect_error([&] { parse_file(dir / "head.pdf", test_config()); }, Error::Code::Corrupt,
                 "malformed PDF");
    write_file(dir / "text.pdf", "this is not a pdf at all\n");
    expect_error([&] { parse_file(dir / "text.pdf", test_config()); }, Error::Code::Corrupt,
                 "malformed PDF");
    // Cut anywhere: poppler may reconstruct what is left; either way no crash, and an error
    // is Corrupt.
    for (size_t cut = 0; cut < pdf.size(); cut += 23) {
        write_file(dir / "cut.pdf", pdf.substr(0, cut + 1));
        try {
            ParsedDocument doc = parse_file(dir / "cut.pdf", test_config());
            EXPECT_FALSE(doc.pages.empty());
        } catch (const Error& e) {
            EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(Error::Code::Corrupt))
                << e.what();
        }
    }
}

TEST(ParsePdf, MutatedPdfsFailCleanly) {
    TempDir dir;
    const std::string pdf = make_pdf({"Alpha page.", "Beta page with more words."});
    std::mt19937 rng(42);
    for (int i = 0; i < 24; ++i) {
        std::string bad = pdf;
        for (int k = 0; k < 1 + i % 8; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
        write_file(dir / "m.pdf", bad);
        try {
            ParsedDocument doc = parse_file(dir / "m.pdf", test_config());
            EXPECT_FALSE(doc.pages.empty());
            for (std::string page : doc.pages) EXPECT_EQ(repair_utf8(page), 0u);
        } catch (const Error& e) {
            EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(Error::Code::Corrupt))
                << e.what();
        }
    }
    EXPECT_TRUE(no_children());
}

TEST(ParsePdf, EncryptedWithPasswordIsCorrupt) {
    TempDir dir;
    PdfOptions opt;
    opt.encrypt = true;
    opt.user_password = "secret";
    write_file(dir / "locked.pdf", make_pdf({"Confidential."}, opt));
    expect_error([&] { parse_file(dir / "locked.pdf", test_config()); }, Error::Code::Corrupt,
                 "encrypted PDF");
}

// Encrypted with an owner password only (permissions): anyone can open and read it.
TEST(ParsePdf, EncryptedWithoutUserPasswordIsRead) {
    TempDir dir;
    PdfOptions opt;
    opt.encrypt = true;
    write_file(dir / "owner.pdf", make_pdf({"Readable though encrypted."}, opt));
    ParsedDocument doc = parse_file(dir / "owner.pdf", test_config());
    ASSERT_EQ(doc.pages.size(), 1u);
    EXPECT_NE(doc.pages[0].find("Readable though encrypted."), std::string::npos);
}

TEST(ParsePdf, ConcurrentCalls) {
    TempDir dir;
    std::vector<std::string> pages;
    const char* words[5] = {"alpha", "bravo", "charlie", "delta", "echo"};
    for (int i = 0; i < 5; ++i) pages.push_back(std::string("Page named ") + words[i] + ".");
    write_file(dir / "doc.pdf", make_pdf(pages));
    write_file(dir / "bad.pdf", "%PDF-1.4\ngarbage\n");
    int fds_before = count_open_fds();
    std::atomic<int> ok{0}, corrupt{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int k = 0; k < 3; ++k) {
                try {
                    ParsedDocument doc =
                        parse_file(dir / ((t + k) % 3 == 0 ? "bad.pdf" : "doc.pdf"), test_config());
                    if (doc.pages.size() == 5 &&
                        doc.pages[4].find("Page named echo.") != std::string::npos)
                        ++ok;
                } catch (const Error& e) {
                    if (e.code() == Error::Code::Corrupt) ++corrupt;
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok + corrupt, 24);
    EXPECT_EQ(corrupt, 8);
    EXPECT_EQ(count_open_fds(), fds_before);
    EXPECT_TRUE(no_children());
}

TEST(ParsePdf, MemoryLimitFailsCleanly) {
    TempDir dir;
    write_file(dir / "doc.pdf", make_pdf({"Text."}));
    Config cfg = test_config();
    cfg.pdf_memory_bytes = 1 << 20;  // far too little for anything
    try {
        parse_file(dir / "doc.pdf", cfg);
        // Sanitizer builds do not apply the limit; then parsing simply works.
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(Error::Code::Corrupt)) << e.what();
    }
    EXPECT_TRUE(no_children());
}

// ---- PDF through fake workers ----

// Parses a valid PDF with the worker replaced by a script; expects a Corrupt error.
void expect_worker_error(const std::string& script_body, const std::string& needle,
                         int timeout_s = 30, int64_t max_file_bytes = 256ll << 20) {
    TempDir dir;
    write_file(dir / "doc.pdf", make_pdf({"Text."}));
    Config cfg = test_config();
    cfg.pdf_worker_exe = write_script(dir, "worker.sh", script_body);
    cfg.pdf_timeout_s = timeout_s;
    cfg.max_file_bytes = max_file_bytes;
    int fds_before = count_open_fds();
    expect_error([&] { parse_file(dir / "doc.pdf", cfg); }, Error::Code::Corrupt, needle);
    EXPECT_EQ(count_open_fds(), fds_before) << "leaked descriptors";
    EXPECT_TRUE(no_children()) << "unreaped child";
}

TEST(PdfWorker, TimeoutKillsAndReaps) {
    expect_worker_error("exec sleep 30", "timed out after 1 s", 1);
}

TEST(PdfWorker, TimeoutKillsHelpersToo) {
    TempDir dir;
    std::string pidfile = dir / "helper.pid";
    // The helper keeps the output pipe open; the whole process group must go.
    expect_worker_error("sleep 30 &\necho $! > " + pidfile + "\nwait", "timed out", 1);
    pid_t helper = std::atoi(test::read_file(pidfile).c_str());
    ASSERT_GT(helper, 0);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
        std::string stat;
        try {
            stat = test::read_file("/proc/" + std::to_string(helper) + "/stat");
        } catch (...) {
        }
        size_t paren = stat.rfind(')');
        gone = stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z");
        if (!gone) usleep(10000);
    }
    EXPECT_TRUE(gone) << "helper process " << helper << " still running";
}

TEST(PdfWorker, CrashIsReported) {
    expect_worker_error("kill -SEGV $$", "PDF worker crashed (SIGSEGV)");
}

TEST(PdfWorker, AbortIsReported) {
    expect_worker_error("kill -ABRT $$", "crashed (SIGABRT)");
}

TEST(PdfWorker, KilledIsReported) {
    expect_worker_error("kill -KILL $$", "killed by SIGKILL");
}

TEST(PdfWorker, NonZeroExit) {
    expect_worker_error("exit 3", "PDF worker failed (exit status 3)");
}

TEST(PdfWorker, GarbageOutput) {
    expect_worker_error("echo hello", "malformed output (no header)");
}

TEST(PdfWorker, OversizedLength) {
    expect_worker_error("printf 'RAGDPDF1P\\377\\377\\377\\177'; sleep 30",
                        "malformed output (page of 2147483647 bytes)", 30, 1 << 20);
}

TEST(PdfWorker, TooMuchText) {
    // Pages within the per-record bound, but more text in all than allowed: 8 MiB of
    // zeros in 256 KiB pages against a 4 MiB total limit.
    expect_worker_error(
        "printf 'RAGDPDF1'; i=0; while [ $i -lt 32 ]; do printf 'P\\000\\000\\004\\000'; "
        "head -c 262144 /dev/zero; i=$((i+1)); done",
        "malformed output (more than", 30, 1 << 20);
}

TEST(PdfWorker, UnknownRecord) {
    expect_worker_error("printf 'RAGDPDF1X'", "unknown record type");
}

TEST(PdfWorker, TruncatedOutput) {
    expect_worker_error("printf 'RAGDPDF1P\\010\\000\\000\\000abc'", "ended early");
}

TEST(PdfWorker, DataAfterLastRecord) {
    expect_worker_error(
        "printf 'RAGDPDF1P\\001\\000\\000\\000aD\\001\\000\\000\\000\\001\\000\\000\\000xyz'",
        "bad end record");
    expect_worker_error(
        "printf 'RAGDPDF1P\\001\\000\\000\\000aD\\004\\000\\000\\000\\001\\000\\000\\000xyz'",
        "data after the last record");
}

TEST(PdfWorker, PageCountMismatch) {
    expect_worker_error(
        "printf 'RAGDPDF1P\\001\\000\\000\\000aD\\004\\000\\000\\000\\002\\000\\000\\000'",
        "page count");
}

TEST(PdfWorker, ErrorRecordIsPassedOn) {
    expect_worker_error("printf 'RAGDPDF1E\\005\\000\\000\\000oops!'; exit 1", "doc.pdf: oops!");
}

TEST(PdfWorker, ClosesOutputButKeepsRunning) {
    expect_worker_error("exec >&-; sleep 30", "timed out", 1);
}

TEST(PdfWorker, FramesAreAcceptedFromAnyWorker) {
    // A well-behaved fake worker: invalid UTF-8 and CRLF in its output are repaired.
    TempDir dir;
    write_file(dir / "doc.pdf", make_pdf({"x"}));
    Config cfg = test_config();
    cfg.pdf_worker_exe = write_script(
        dir, "worker.sh",
        "printf "
        "'RAGDPDF1P\\005\\000\\000\\000a\\377\\r\\nbD\\004\\000\\000\\000\\001\\000\\000\\000'");
    ParsedDocument doc = parse_file(dir / "doc.pdf", cfg);
    ASSERT_EQ(doc.pages.size(), 1u);
    EXPECT_EQ(doc.pages[0], "a\xEF\xBF\xBD\nb");
}

TEST(PdfWorker, MissingWorkerIsIO) {
    TempDir dir;
    write_file(dir / "doc.pdf", make_pdf({"Text."}));
    Config cfg = test_config();
    cfg.pdf_worker_exe = dir / "no-such-worker";
    expect_error([&] { parse_file(dir / "doc.pdf", cfg); }, Error::Code::IO,
                 "cannot start PDF worker");
    EXPECT_TRUE(no_children());
}

TEST(PdfWorker, UsageWithoutFile) {
    char exe[] = "ragd", mode[] = "__pdf-worker";
    char* argv[] = {exe, mode, nullptr};
    EXPECT_EQ(pdf_worker_main(2, argv), 2);
}

}  // namespace
}  // namespace ragd
