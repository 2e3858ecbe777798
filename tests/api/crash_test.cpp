// Kill -9 at random moments during ingestion, then rerun: the end state must be exactly
// that of one uninterrupted run (no chunk lost or duplicated, indexes agree with SQLite).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "index/index.h"
#include "ingest/store.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::run_ragd;
using test::TempDir;

// Document hash -> its chunks (page range, span, text), in order: what "the same end
// state" means. Chunk ids may differ between runs; everything else must not.
std::map<std::string, std::vector<std::string>> snapshot(const std::string& data) {
    Store store(data);
    std::map<std::string, std::vector<std::string>> out;
    for (const DocumentRow& d : store.documents()) {
        std::vector<std::string>& rows = out[d.hash + " " + fs::path(d.path).filename().string()];
        for (const ChunkRow& c : store.chunks_of_document(d.id))
            rows.push_back(std::to_string(c.page_start) + "-" + std::to_string(c.page_end) + " " +
                           std::to_string(c.start) + "-" + std::to_string(c.end) + " " + c.text);
    }
    return out;
}

// What each store holds, read without letting the indexes catch up first (ragd stats
// would sync them): the state the last ingest left behind.
struct Counts {
    int64_t chunks, keyword_docs, vectors;
};
Counts raw_counts(const std::string& data) {
    Config cfg;
    cfg.data_dir = data;
    Store store(data);
    Indexes indexes(cfg, make_hashed_embedder());
    return {store.counts().chunks, indexes.keyword_docs(), indexes.vectors()};
}

json stats(const std::string& data) {
    test::RunResult r = run_ragd({"stats", "--data", data, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
}

TEST(Crash, KillNineDuringIngestThenRerunConverges) {
    TempDir dir;
    std::string input = dir / "input";
    fs::create_directories(input);
    // Enough work that kills land in every phase: parsing, storing, indexing.
    std::mt19937 rng(20261123);
    const char* words[] = {"contract",  "patient", "dose",      "termination", "notice",
                           "liability", "privacy", "retention", "payment",     "tablet",
                           "the",       "of",      "and",       "shall",       "within"};
    for (int f = 0; f < 80; ++f) {
        std::string text;
        int paragraphs = 5 + static_cast<int>(rng() % 30);
        for (int p = 0; p < paragraphs; ++p) {
            for (int s = 0; s < 6; ++s) {
                for (int w = 0; w < 12; ++w) text += std::string(words[rng() % 15]) + " ";
                text += "clause" + std::to_string(f * 1000 + p * 10 + s) + ".\n";
            }
            text += "\n";
        }
        test::write_file(input + "/doc" + std::to_string(f) + ".txt", text);
    }
    for (auto& e : fs::directory_iterator(test::source_dir() + "/corpus"))
        if (e.path().extension() == ".pdf")
            fs::copy_file(e.path(), input + "/" + e.path().filename().string());

    std::string crashed = dir / "crashed";
    // Delays spread over the whole run (about a second here): parsing, storing, the
    // periodic index syncs and the final one all get killed in some round.
    std::uniform_int_distribution<int> delay_ms(5, 1200);
    int kills = 0;
    for (int round = 0; round < 12; ++round) {
        int pid = test::spawn_ragd({"ingest", "--data", crashed, "--workers", "2", input});
        usleep(static_cast<useconds_t>(delay_ms(rng)) * 1000);
        if (kill(pid, SIGKILL) == 0) ++kills;
        test::wait_ragd(pid);
    }
    test::RunResult last = run_ragd({"ingest", "--data", crashed, input});
    ASSERT_EQ(last.exit_code, 0) << last.err;

    std::string clean = dir / "clean";
    test::RunResult once = run_ragd({"ingest", "--data", clean, input});
    ASSERT_EQ(once.exit_code, 0) << once.err;

    EXPECT_GT(kills, 0);
    Counts raw = raw_counts(crashed);
    EXPECT_EQ(raw.chunks, raw.keyword_docs);
    EXPECT_EQ(raw.chunks, raw.vectors);
    EXPECT_EQ(snapshot(crashed), snapshot(clean));
    json a = stats(crashed), b = stats(clean);
    EXPECT_EQ(a["documents"], b["documents"]);
    EXPECT_EQ(a["chunks"], b["chunks"]);
    EXPECT_EQ(a["chunks"], a["keyword_docs"]);
    EXPECT_EQ(a["chunks"], a["vectors"]);
    EXPECT_EQ(a["jobs_pending"], 0);
    EXPECT_EQ(a["jobs_failed"], 0);

    // Unique terms find the same chunks in both: nothing stale or missing in the indexes.
    // (Overlapping chunks can share a term, and their order among equal scores follows
    // index-internal ids that differ between the runs, so compare the sets.)
    for (const char* q : {"clause2013", "clause17005", "clause35040"}) {
        for (const char* mode : {"keyword", "hybrid"}) {
            std::multiset<std::string> found[2];
            int i = 0;
            for (const std::string& data : {crashed, clean}) {
                json hits = json::parse(
                    run_ragd({"search", "--data", data, "--mode", mode, "--json", "-k", "10", q})
                        .out);
                for (const json& h : hits) {
                    std::string text = h["text"];
                    if (text.find(q) != std::string::npos) found[i].insert(text);
                }
                ++i;
            }
            EXPECT_FALSE(found[0].empty()) << q << " " << mode;
            EXPECT_EQ(found[0], found[1]) << q << " " << mode;
        }
    }
}

}  // namespace
}  // namespace ragd
