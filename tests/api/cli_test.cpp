// Integration tests of the `ragd` binary on the bundled corpus: ingest, search, ask, docs,
// stats, reindex, and the bad inputs of the CLI contract.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "ingest/store.h"
#include "tests/ingest/pdf_fixture.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::read_file;
using test::run_ragd;
using test::RunResult;
using test::TempDir;
using test::write_file;

// Whitespace runs (line breaks, page breaks) as single spaces: PDF text wraps lines.
std::string squash(const std::string& s) {
    std::string out;
    for (char c : s) {
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f';
        if (space && (out.empty() || out.back() == ' ')) continue;
        out += space ? ' ' : c;
    }
    return out;
}

std::string corpus_dir() {
    return test::source_dir() + "/corpus";
}

json stats(const std::string& data) {
    RunResult r = run_ragd({"stats", "--data", data, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
}

// The three stores hold the same chunks.
void expect_consistent(const json& s) {
    EXPECT_EQ(s["chunks"], s["keyword_docs"]) << s.dump();
    EXPECT_EQ(s["chunks"], s["vectors"]) << s.dump();
}

// The corpus is ingested once into a data directory shared by the read-only tests.
class Corpus : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        RunResult r = run_ragd({"ingest", "--data", data(), corpus_dir()});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    static std::string data() { return *dir_ / "data"; }
    static TempDir* dir_;
};
TempDir* Corpus::dir_ = nullptr;

TEST_F(Corpus, IngestsEveryFileIntoAllThreeStores) {
    size_t files = 0;
    for (auto& e : fs::directory_iterator(corpus_dir()))
        files += e.is_regular_file() && e.path().extension() != ".json";
    json s = stats(data());
    EXPECT_EQ(s["documents"].get<size_t>(), files);
    EXPECT_GT(s["chunks"].get<int>(), 20);
    expect_consistent(s);
    EXPECT_EQ(s["jobs_pending"], 0);
    EXPECT_EQ(s["jobs_failed"], 0);
}

TEST_F(Corpus, EverySampleQuestionFindsItsSourceInTopFiveHybridHits) {
    json questions = json::parse(read_file(corpus_dir() + "/questions.json"));
    if (questions.is_object()) questions = questions["questions"];
    ASSERT_GE(questions.size(), 10u);
    int pdf_questions = 0;
    for (const json& q : questions) {
        std::string question = q["question"];
        std::string document = q["document"];
        int page = q["page"];
        pdf_questions += document.size() > 4 && document.substr(document.size() - 4) == ".pdf";
        RunResult r = run_ragd({"search", "--data", data(), "-k", "5", "--json", question});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        json hits = json::parse(r.out);
        bool found = false;
        for (const json& h : hits) {
            for (const char* key :
                 {"chunk_id", "document", "path", "page", "start", "end", "score", "text"})
                ASSERT_TRUE(h.contains(key)) << key;
            if (h["document"] == document && h["page"].get<int>() <= page &&
                page <= h["page_end"].get<int>() &&
                squash(h["text"]).find(squash(q["answer_contains"])) != std::string::npos)
                found = true;
        }
        EXPECT_TRUE(found) << "question: " << question << "\nexpected " << document << " p." << page
                           << " containing: " << q["answer_contains"]
                           << "\ngot: " << hits.dump(1).substr(0, 2000);
    }
    EXPECT_GE(pdf_questions, 3);
}

TEST_F(Corpus, SearchModesAndFilters) {
    for (const char* mode : {"hybrid", "keyword", "vector"}) {
        RunResult r = run_ragd({"search", "--data", data(), "--mode", mode, "-k", "3", "--json",
                                "termination notice"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        json hits = json::parse(r.out);
        EXPECT_EQ(hits.size(), 3u) << mode;
    }
    RunResult docs = run_ragd({"docs", "--data", data(), "--json"});
    json list = json::parse(docs.out);
    ASSERT_FALSE(list.empty());
    int64_t id = list[0]["id"];
    RunResult r = run_ragd({"search", "--data", data(), "--document", std::to_string(id), "-k",
                            "10", "--json", "the"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const json& h : json::parse(r.out)) EXPECT_EQ(h["document_id"], id);
}

TEST_F(Corpus, AskQuotesTheDocumentsExactly) {
    RunResult r = run_ragd({"ask", "--data", data(), "--json",
                            "How much notice is required to terminate for convenience?"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json a = json::parse(r.out);
    ASSERT_TRUE(a.contains("answer"));
    ASSERT_TRUE(a.contains("citations"));
    ASSERT_FALSE(a["citations"].empty()) << r.out;
    for (const json& c : a["citations"]) {
        std::string path = c["path"];
        std::string quote = c["text"];
        // (Built with += : "[" + std::to_string() trips a GCC 12 -Wrestrict false positive.)
        std::string marker = "[";
        marker += std::to_string(c["number"].get<int>());
        marker += "]";
        EXPECT_NE(a["answer"].get<std::string>().find(marker), std::string::npos);
        if (path.size() > 4 && path.substr(path.size() - 4) != ".pdf") {
            // Text files are stored as they are (LF line ends): the span is the file's bytes.
            std::string file = read_file(path);
            int64_t start = c["start"], end = c["end"];
            ASSERT_LE(end, static_cast<int64_t>(file.size()));
            EXPECT_EQ(file.substr(start, end - start), quote);
        }
    }
    RunResult text = run_ragd({"ask", "--data", data(), "What is the governing law?"});
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("Sources:"), std::string::npos) << text.out;
}

TEST_F(Corpus, ReingestingUnchangedFilesIsANoOp) {
    json before = stats(data());
    RunResult r = run_ragd({"ingest", "--data", data(), "--json", corpus_dir()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json rep = json::parse(r.out);
    EXPECT_EQ(rep["unchanged"], rep["files"]);
    EXPECT_EQ(rep["added"], 0);
    json after = stats(data());
    EXPECT_EQ(before["documents"], after["documents"]);
    EXPECT_EQ(before["chunks"], after["chunks"]);
    expect_consistent(after);
}

TEST(Cli, ChangedFileReplacesAndRmDeletesEverywhere) {
    TempDir dir;
    std::string data = dir / "data";
    write_file(dir / "a.txt", "The warranty period is twelve months from delivery.\n");
    write_file(dir / "b.txt", "Invoices are payable within thirty days.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "a.txt", dir / "b.txt"}).exit_code, 0);

    write_file(dir / "a.txt", "The warranty period is twenty-four months from acceptance.\n");
    RunResult r = run_ragd({"ingest", "--data", data, "--json", dir / "a.txt"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["replaced"], 1);
    json s = stats(data);
    EXPECT_EQ(s["documents"], 2);
    expect_consistent(s);
    json hits = json::parse(
        run_ragd({"search", "--data", data, "--mode", "keyword", "--json", "twelve"}).out);
    EXPECT_TRUE(hits.empty()) << hits.dump();

    r = run_ragd({"docs", "rm", "--data", data, dir / "a.txt"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    s = stats(data);
    EXPECT_EQ(s["documents"], 1);
    expect_consistent(s);
    for (const char* mode : {"keyword", "vector", "hybrid"}) {
        hits = json::parse(
            run_ragd({"search", "--data", data, "--mode", mode, "--json", "warranty"}).out);
        for (const json& h : hits) EXPECT_EQ(h["document"], "b.txt") << mode;
    }
    // Removing what is not there fails and changes nothing.
    r = run_ragd({"docs", "rm", "--data", data, "999", dir / "b.txt"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(stats(data)["documents"], 1);
}

TEST(Cli, ReindexRebuildsFromSqlite) {
    TempDir dir;
    std::string data = dir / "data";
    ASSERT_EQ(run_ragd({"ingest", "--data", data, corpus_dir() + "/privacy-policy.md"}).exit_code,
              0);
    json before = stats(data);
    fs::remove_all(data + "/xapian");
    fs::remove(data + "/vectors.faiss");
    RunResult r = run_ragd({"reindex", "--data", data});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json after = stats(data);
    EXPECT_EQ(after["chunks"], before["chunks"]);
    expect_consistent(after);
}

// Runs one bad ingestion and checks the error is one clear line and nothing was stored.
void expect_ingest_fails_cleanly(const std::string& data, const std::string& path,
                                 const std::string& error_part) {
    json before = stats(data);
    RunResult r = run_ragd({"ingest", "--data", data, path});
    EXPECT_NE(r.exit_code, 0) << path;
    EXPECT_NE(r.err.find(error_part), std::string::npos) << "stderr: " << r.err;
    json after = stats(data);
    EXPECT_EQ(before["documents"], after["documents"]) << path;
    EXPECT_EQ(before["chunks"], after["chunks"]) << path;
    expect_consistent(after);
}

TEST(Cli, BadInputsFailCleanlyAndChangeNothing) {
    TempDir dir;
    std::string data = dir / "data";
    write_file(dir / "ok.txt", "A valid document about data retention schedules.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "ok.txt"}).exit_code, 0);

    expect_ingest_fails_cleanly(data, dir / "missing.txt", "no such file");
    write_file(dir / "empty.txt", "");
    expect_ingest_fails_cleanly(data, dir / "empty.txt", "empty");
    std::string binary;
    for (int i = 0; i < 4096; ++i) binary += static_cast<char>((i * 7919) & 0xff);
    write_file(dir / "binary.txt", binary);
    expect_ingest_fails_cleanly(data, dir / "binary.txt", "binary.txt");
    write_file(dir / "truncated.pdf", "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R");
    expect_ingest_fails_cleanly(data, dir / "truncated.pdf", "truncated.pdf");
    write_file(dir / "garbage.pdf", binary);
    expect_ingest_fails_cleanly(data, dir / "garbage.pdf", "garbage.pdf");
    write_file(dir / "zero.pdf", test::make_pdf({}));
    expect_ingest_fails_cleanly(data, dir / "zero.pdf", "no pages");
    test::PdfOptions locked;
    locked.encrypt = true;
    locked.user_password = "secret";
    write_file(dir / "locked.pdf", test::make_pdf({"Confidential terms."}, locked));
    expect_ingest_fails_cleanly(data, dir / "locked.pdf", "encrypted PDF");
    write_file(dir / "blank.pdf", test::make_pdf({"", ""}));
    expect_ingest_fails_cleanly(data, dir / "blank.pdf", "no extractable text");
    // A folder with nothing to ingest is an error, not a silent success. (An unreadable
    // file is tested in tests/ingest/parse_test.cpp, which drops root's privileges.)
    fs::create_directories(dir / "empty-folder");
    RunResult r = run_ragd({"ingest", "--data", data, dir / "empty-folder"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("no files found"), std::string::npos) << r.err;
}

TEST(Cli, HugeSingleLineIsChunkedNotRejected) {
    TempDir dir;
    std::string data = dir / "data";
    std::string line;
    for (int i = 0; line.size() < (4u << 20); ++i) line += "word" + std::to_string(i % 977) + " ";
    write_file(dir / "line.txt", line);
    RunResult r = run_ragd({"ingest", "--data", data, dir / "line.txt"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json s = stats(data);
    EXPECT_GT(s["chunks"].get<int>(), 100);
    expect_consistent(s);
}

TEST(Cli, UsageErrorsAreOneLineAndExitTwo) {
    TempDir dir;
    std::vector<std::vector<std::string>> bad = {
        {"frobnicate"},
        {"search", "--data", dir / "none", "anything"},
        {"search", "--bogus-flag", "x"},
        {"search", "-k", "0", "x"},
        {"search", "-k", "abc", "x"},
        {"search", "--mode", "psychic", "x"},
        {"ingest", "--data", dir / "none"},  // nothing named and no queue to resume
        {"run", "-m", "x.gguf", "-p", "hi"},
    };
    for (const auto& args : bad) {
        RunResult r = run_ragd(args);
        EXPECT_EQ(r.exit_code, 2) << args[0] << " " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("ragd: error: ", 0), 0u) << r.err;
    }
    RunResult help = run_ragd({"help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("ragd ingest"), std::string::npos);
}

TEST(Cli, DataDirectoryComesFromFlagThenEnvironment) {
    TempDir dir;
    write_file(dir / "a.txt", "Environment variables choose the data directory.\n");
    std::string env_dir = dir / "from-env";
    std::string cmd = "cd '" + dir.path() + "' && RAGD_DATA='" + env_dir + "' '" +
                      test::ragd_binary() + "' ingest a.txt >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_TRUE(fs::exists(env_dir + "/ragd.db"));
    cmd = "cd '" + dir.path() + "' && '" + test::ragd_binary() + "' ingest a.txt >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_TRUE(fs::exists(dir / "ragd-data/ragd.db"));
}

}  // namespace
}  // namespace ragd

namespace ragd {
namespace {

TEST(Cli, SwappingTwoFilesContentLosesNeither) {
    TempDir dir;
    std::string data = dir / "data";
    fs::create_directories(dir / "in");
    write_file(dir / "in/a.txt", "Apples are harvested in autumn.\n");
    write_file(dir / "in/b.txt", "Zebras graze on the savanna.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "in"}).exit_code, 0);
    write_file(dir / "in/a.txt", "Zebras graze on the savanna.\n");
    write_file(dir / "in/b.txt", "Apples are harvested in autumn.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "in"}).exit_code, 0);
    for (const char* q : {"apples", "zebras"}) {
        json hits =
            json::parse(run_ragd({"search", "--data", data, "--mode", "keyword", "--json", q}).out);
        ASSERT_EQ(hits.size(), 1u) << q;
    }
    EXPECT_EQ(stats(data)["documents"], 2);
}

TEST(Cli, ReingestWithAnotherCollectionMovesTheDocument) {
    TempDir dir;
    std::string data = dir / "data";
    write_file(dir / "a.txt", "The indemnity clause survives termination.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "a.txt"}).exit_code, 0);
    ASSERT_EQ(run_ragd({"ingest", "--data", data, "-c", "legal", dir / "a.txt"}).exit_code, 0);
    for (const char* mode : {"keyword", "vector", "hybrid"}) {
        json hits = json::parse(run_ragd({"search", "--data", data, "--mode", mode, "-c", "legal",
                                          "--json", "indemnity"})
                                    .out);
        ASSERT_EQ(hits.size(), 1u) << mode;
        EXPECT_EQ(hits[0]["collection"], "legal");
    }
    expect_consistent(stats(data));
}

TEST(Cli, FolderWalkSkipsBinariesWithoutExtensionAndFixedFilesClearFailures) {
    TempDir dir;
    std::string data = dir / "data";
    fs::create_directories(dir / "in");
    write_file(dir / "in/LICENSE", "Permission is hereby granted, free of charge.\n");
    std::string elf =
        "\x7f"
        "ELF";
    elf += std::string(4096, '\0');
    write_file(dir / "in/program", elf);
    RunResult r = run_ragd({"ingest", "--data", data, "--json", dir / "in"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["added"], 1);  // LICENSE yes, the program not even tried

    write_file(dir / "in/empty.txt", "");
    EXPECT_EQ(run_ragd({"ingest", "--data", data, dir / "in"}).exit_code, 1);
    EXPECT_EQ(stats(data)["jobs_failed"], 1);
    write_file(dir / "in/empty.txt", "Now it has words in it.\n");
    EXPECT_EQ(run_ragd({"ingest", "--data", data, dir / "in"}).exit_code, 0);
    EXPECT_EQ(stats(data)["jobs_failed"], 0);
}

TEST(Cli, IngestWithoutPathsResumesTheQueue) {
    TempDir dir;
    std::string data = dir / "data";
    write_file(dir / "a.txt", "Queued before a crash.\n");
    {
        // A queued job with no process to run it: what a kill -9 right after queueing leaves.
        Store store(data);
        store.enqueue_job(dir / "a.txt", "");
    }
    RunResult r = run_ragd({"ingest", "--data", data, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["added"], 1);
    json s = stats(data);
    EXPECT_EQ(s["documents"], 1);
    expect_consistent(s);
}

TEST(Cli, SearchWorksWhileAnotherProcessIngests) {
    TempDir dir;
    std::string data = dir / "data";
    write_file(dir / "first.txt", "The first document mentions aardvarks.\n");
    ASSERT_EQ(run_ragd({"ingest", "--data", data, dir / "first.txt"}).exit_code, 0);
    fs::create_directories(dir / "many");
    for (int i = 0; i < 300; ++i)
        write_file(dir / ("many/f" + std::to_string(i) + ".txt"),
                   "Document number " + std::to_string(i) + " about quarterly reports.\n");
    int pid = test::spawn_ragd({"ingest", "--data", data, dir / "many"});
    // Readers never wait for the writer, and never keep it out.
    for (int i = 0; i < 5; ++i) {
        RunResult r =
            run_ragd({"search", "--data", data, "--mode", "keyword", "--json", "aardvarks"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(json::parse(r.out).size(), 1u);
    }
    EXPECT_EQ(test::wait_ragd(pid), 0);
    json s = stats(data);
    EXPECT_EQ(s["documents"], 301);
    expect_consistent(s);
}

}  // namespace
}  // namespace ragd
