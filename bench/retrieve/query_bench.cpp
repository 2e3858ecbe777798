// query_bench: build time, memory, disk and query latency of ragd's retrieval at a given
// number of chunks, on synthetic text.
//
//   query_bench [--chunks 10k,100k,1M] [--data DIR] [--queries 500] [--k 10]
//               [--known 200] [--recall-queries 1000] [--recall-max 100000]
//               [--ef-search 64,256,...] [--chunks-per-doc 100] [--seed 1] [--rebuild]
//               [--store-only]
//
// For each size N it uses DIR/chunks-N. What an earlier run completed there (recorded in
// DIR/chunks-N/bench-build.txt with its figures) is reused: the filled store, or the whole
// directory; --rebuild starts over. --store-only stops after step 1. The build goes
// through the library API:
//   1. Store::put_document of synthetic documents (N / chunks-per-doc of them, 4 chunks per
//      page). Chunk text: sentences over a Zipf (s = 1) vocabulary of English function
//      words, ~200 legal and medical terms and 50,000 generated words, 150-200 tokens;
//      each document is about one of 200 topics, which supply 30% of its words.
//   2. Indexes::sync: Xapian BM25 + the built-in embedder + FAISS HNSW, from the store.
// Then it reopens the directory as a fresh process would (timed), and measures:
//   - latency of ragd::search for --queries random queries (2-6 content words, mostly of
//     one topic) in each mode: p50/p95/p99/mean and QPS, one query at a
//     time, after a warm-up of 50 queries (OS page cache warm: not cold-start figures);
//   - known-item success@k per mode: a query of the 4 rarest words of a random stored
//     chunk should find that chunk in its top k (a correctness check of all three modes);
//   - vector recall@k of HNSW against exact inner product over every chunk (FAISS flat),
//     for N <= --recall-max (this re-embeds every chunk, so it is skipped for big N), at
//     the configured efSearch or at each --ef-search value; beside it the known-item
//     success of the exact search, which tells the embedding's misses from HNSW's.
// FAISS opens an OpenMP parallel region even for one query, and with other load on the
// machine its barrier can wait for a descheduled thread for milliseconds; so hybrid and
// vector latency are measured twice: with the default OpenMP threads and with one.
// Peak RSS is reset per phase through /proc/self/clear_refs (Linux >= 4.0) and read from
// getrusage(RUSAGE_SELF).ru_maxrss.
//
// Prints one line per figure and a Markdown summary table at the end. Never asserts on
// time; exits non-zero only on a failure to build or search.
//
// Retrieval quality (--quality): the sample questions of corpus/questions.json against
// the real corpus, ingested by the ragd binary (`ragd ingest`, PDFs included) into
// DATA/quality-*. A hit answers a question when it is from the stated document, its pages
// include the stated page and its text contains the answer phrase (whitespace and case
// folded). Per stage: recall@5 (share of questions answered in the top 5) and MRR@10 (mean
// of 1/rank of the first answering hit, 0 past rank 10), for keyword, vector (built-in
// embedder), hybrid, and hybrid + reranker; and vector/hybrid with an embedding model.
//   query_bench --quality [--corpus DIR] [--data DIR] [--ragd PATH]
//               [--embed-model E.gguf] [--rerank-model R.gguf] [--rerank-top-n 50]
//               [--random-models]
// Models come from the flags or $RAGD_EMBED_MODEL / $RAGD_RERANK_MODEL; --random-models
// writes random-weight ones with the tests' GGUF writer to exercise the stages (their
// numbers say nothing about quality).
#include <faiss/IndexFlat.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "index/index.h"
#include "ingest/store.h"
#include "retrieve/retrieve.h"
#include "tests/generate/model_writer.h"

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------
// Small utilities

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// splitmix64: deterministic on every platform (unlike std:: distributions).
class Rng {
  public:
    explicit Rng(uint64_t seed) : s_(seed) {}
    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    // Uniform in [0, n).
    uint64_t below(uint64_t n) { return next() % n; }
    int range(int lo, int hi) { return lo + int(below(uint64_t(hi - lo + 1))); }

  private:
    uint64_t s_;
};

// Peak RSS so far in MiB (ru_maxrss is in KiB on Linux).
double peak_rss_mib() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

// Current RSS in MiB.
double rss_mib() {
    std::ifstream f("/proc/self/statm");
    long pages_total = 0, pages_res = 0;
    f >> pages_total >> pages_res;
    return double(pages_res) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Resets the peak RSS to the current RSS, so the next phase reports its own peak.
void reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";
}

int64_t path_bytes(const fs::path& p) {
    std::error_code ec;
    if (!fs::exists(p, ec)) return 0;
    if (!fs::is_directory(p, ec)) return int64_t(fs::file_size(p, ec));
    int64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(p, ec)) {
        if (e.is_regular_file(ec)) total += int64_t(e.file_size(ec));
    }
    return total;
}

double mib(int64_t bytes) {
    return double(bytes) / (1024.0 * 1024.0);
}

// "10k" -> 10000, "1M" -> 1000000, "2500" -> 2500; 0 on a bad value.
int64_t parse_count(const std::string& s) {
    if (s.empty()) return 0;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K') {
        mult = 1000;
        ++end;
    } else if (*end == 'm' || *end == 'M') {
        mult = 1000000;
        ++end;
    }
    if (*end != '\0' || v <= 0) return 0;
    return int64_t(std::llround(v * double(mult)));
}

// ---------------------------------------------------------------------------------------
// Synthetic text

const char* const kFunctionWords[] = {
    "the",   "of",    "and",    "to",    "in",      "a",     "is",     "that",   "for",     "it",
    "as",    "with",  "be",     "on",    "by",      "this",  "which",  "or",     "from",    "at",
    "an",    "are",   "not",    "shall", "will",    "may",   "must",   "any",    "all",     "such",
    "its",   "other", "under",  "each",  "no",      "been",  "has",    "have",   "were",    "their",
    "these", "those", "within", "upon",  "without", "after", "before", "during", "between", "than",
    "more",  "where", "when",   "only",  "also",    "if",    "was",    "his",    "her",     "they"};

const char* const kDomainWords[] = {
    // contracts
    "agreement", "party", "parties", "contractor", "client", "supplier", "licensee", "licensor",
    "indemnify", "indemnification", "liability", "warranty", "warranties", "termination",
    "convenience", "notice", "breach", "remedy", "remedies", "confidential", "confidentiality",
    "obligation", "obligations", "jurisdiction", "arbitration", "governing", "law", "clause",
    "schedule", "exhibit", "amendment", "assignment", "subcontractor", "invoice", "payment", "fees",
    "deliverables", "acceptance", "intellectual", "property", "license", "sublicense",
    "representation", "covenant", "force", "majeure", "insurance", "audit", "records", "compliance",
    "statute", "damages", "consequential", "incidental", "limitation", "cap", "renewal", "term",
    "effective", "counterpart", "severability", "waiver", "entire", "successor", "affiliate",
    "personnel", "processor", "controller", "subprocessor", "notification", "retention", "deletion",
    "escrow", "milestone", "tenant", "landlord", "lease", "premises", "rent", "deposit", "employer",
    "employee", "salary", "severance", "probation", "dismissal", "grievance", "mediation",
    "tribunal", "plaintiff", "defendant", "claimant", "respondent", "appeal", "injunction",
    "settlement", "negligence", "fiduciary", "trustee", "beneficiary", "guarantor", "collateral",
    "lien", "mortgage", "default", "interest", "principal",
    // clinical
    "patient", "admission", "discharge", "diagnosis", "prognosis", "symptom", "symptoms", "dyspnea",
    "tachycardia", "hypertension", "hypotension", "diabetes", "mellitus", "insulin", "metformin",
    "dosage", "dose", "tablet", "milligrams", "intravenous", "oral", "contraindication",
    "contraindications", "adverse", "reaction", "allergy", "penicillin", "amoxicillin",
    "anticoagulant", "warfarin", "heparin", "renal", "hepatic", "cardiac", "pulmonary", "embolism",
    "infarction", "myocardial", "angina", "echocardiogram", "electrocardiogram", "radiograph",
    "tomography", "resonance", "biopsy", "pathology", "oncology", "chemotherapy", "outpatient",
    "inpatient", "nursing", "temperature", "saturation", "oxygen", "antibiotic", "infection",
    "sepsis", "culture", "laboratory", "hemoglobin", "creatinine", "potassium", "sodium",
    "physician", "consultant", "referral", "therapy", "rehabilitation", "physiotherapy",
    "medication", "fracture", "anemia", "asthma", "bronchitis", "pneumonia", "stroke", "seizure",
    "migraine", "dementia", "depression", "anxiety", "obesity", "cholesterol", "statin", "aspirin",
    "ibuprofen", "paracetamol", "morphine", "opioid", "analgesic", "sedation", "anesthesia",
    "surgery", "incision", "suture", "wound", "dressing", "catheter", "ventilator", "dialysis"};

// The vocabulary by Zipf rank: function words first, then domain terms, then generated
// words (pronounceable syllables, unique, deterministic). Topics give the corpus the
// structure real collections have (a lease, a discharge summary): each topic is a set of
// kTopicWords content words, drawn within the topic by Zipf rank too. A document has one
// topic; kTopicShare of its words come from it, the rest from the whole vocabulary.
constexpr int kTopics = 200;
constexpr int kTopicWords = 300;
constexpr double kTopicShare = 0.3;

struct Vocabulary {
    std::vector<std::string> words;
    std::vector<double> cdf;   // cdf[r] = P(rank <= r), Zipf with s = 1
    size_t first_content = 0;  // ranks below this are function words
    std::unordered_map<std::string, size_t> rank;
    std::vector<std::vector<size_t>> topics;  // word ranks of each topic
    std::vector<double> topic_cdf;            // Zipf over a topic's kTopicWords

    explicit Vocabulary(size_t generated) {
        for (const char* w : kFunctionWords) words.push_back(w);
        first_content = words.size();
        for (const char* w : kDomainWords) words.push_back(w);
        std::unordered_set<std::string> seen(words.begin(), words.end());
        static const char kCons[] = "bcdfghjklmnprstvwz";
        static const char kVow[] = "aeiou";
        static const char* const kSuffix[] = {"tion", "ment", "ance", "ity", "ous",
                                              "al",   "ing",  "ed",   "er"};
        Rng rng(0x5eed0fc0ffeeull);
        size_t target = words.size() + generated;
        while (words.size() < target) {
            std::string w;
            int syll = rng.range(2, 4);
            for (int i = 0; i < syll; ++i) {
                w += kCons[rng.below(sizeof kCons - 1)];
                w += kVow[rng.below(sizeof kVow - 1)];
            }
            if (rng.uniform() < 0.4) w += kSuffix[rng.below(9)];
            if (seen.insert(w).second) words.push_back(w);
        }
        cdf.resize(words.size());
        double sum = 0;
        for (size_t r = 0; r < words.size(); ++r) {
            sum += 1.0 / double(r + 1);
            cdf[r] = sum;
        }
        for (double& c : cdf) c /= sum;
        cdf.back() = 1.0;
        for (size_t r = 0; r < words.size(); ++r) rank.emplace(words[r], r);

        topics.resize(kTopics);
        for (auto& t : topics) {
            while (int(t.size()) < kTopicWords) {
                size_t r = first_content + rng.below(words.size() - first_content);
                if (std::find(t.begin(), t.end(), r) == t.end()) t.push_back(r);
            }
        }
        topic_cdf.resize(kTopicWords);
        sum = 0;
        for (int i = 0; i < kTopicWords; ++i) {
            sum += 1.0 / double(i + 1);
            topic_cdf[size_t(i)] = sum;
        }
        for (double& c : topic_cdf) c /= sum;
        topic_cdf.back() = 1.0;
    }

    size_t draw(Rng& rng) const {
        double u = rng.uniform();
        return size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    }
    size_t draw_content(Rng& rng) const {
        for (;;) {
            size_t r = draw(rng);
            if (r >= first_content) return r;
        }
    }
    size_t draw_topic(Rng& rng, int topic) const {
        double u = rng.uniform();
        size_t i =
            size_t(std::upper_bound(topic_cdf.begin(), topic_cdf.end(), u) - topic_cdf.begin());
        return topics[size_t(topic)][std::min(i, size_t(kTopicWords - 1))];
    }
};

// One chunk of prose on a topic, of 150-200 approximate tokens (words + sentence-final
// periods).
std::string make_chunk_text(const Vocabulary& v, Rng& rng, int topic) {
    int target = rng.range(150, 200);
    int tokens = 0;
    std::string out;
    while (tokens < target) {
        int n = std::min(rng.range(8, 24), std::max(target - tokens - 1, 3));
        for (int i = 0; i < n; ++i) {
            size_t r = rng.uniform() < kTopicShare ? v.draw_topic(rng, topic) : v.draw(rng);
            const std::string& w = v.words[r];
            if (!out.empty()) out += ' ';
            if (i == 0) {
                out += char(std::toupper(static_cast<unsigned char>(w[0])));
                out.append(w, 1, std::string::npos);
            } else {
                out += w;
            }
        }
        out += '.';
        tokens += n + 1;
    }
    return out;
}

// A random query of 2-6 distinct content words about a random topic: 70% of the words
// from the topic, the rest from the whole vocabulary.
std::string make_query(const Vocabulary& v, Rng& rng) {
    int n = rng.range(2, 6);
    int topic = int(rng.below(kTopics));
    std::vector<size_t> picked;
    while (int(picked.size()) < n) {
        size_t r = rng.uniform() < 0.7 ? v.draw_topic(rng, topic) : v.draw_content(rng);
        if (std::find(picked.begin(), picked.end(), r) == picked.end()) picked.push_back(r);
    }
    std::string q;
    for (size_t r : picked) {
        if (!q.empty()) q += ' ';
        q += v.words[r];
    }
    return q;
}

// The lowercase words of a text.
std::vector<std::string> words_of(const std::string& text) {
    std::vector<std::string> out;
    std::string w;
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isalpha(u)) {
            w += char(std::tolower(u));
        } else if (!w.empty()) {
            out.push_back(w);
            w.clear();
        }
    }
    if (!w.empty()) out.push_back(w);
    return out;
}

// ---------------------------------------------------------------------------------------
// Build

constexpr int kChunksPerPage = 4;
// Bump when the generated text changes, so that older data directories are rebuilt.
constexpr int kDataVersion = 2;

struct BuildStats {
    int64_t chunks = 0, documents = 0;
    double gen_s = 0, insert_s = 0, sync_s = -1;  // sync_s < 0: indexes not built
    double insert_peak_mib = 0, sync_peak_mib = 0;
};

// DIR/bench-build.txt records the build as it goes: written after the store is filled,
// rewritten with sync_s after the indexes are built. A later run resumes from there.
std::string stats_file(const std::string& dir) {
    return dir + "/bench-build.txt";
}

void save_stats(const std::string& dir, const BuildStats& b) {
    std::ofstream f(stats_file(dir));
    f << "data_version " << kDataVersion << "\nchunks " << b.chunks << "\ndocuments " << b.documents
      << "\ngen_s " << b.gen_s << "\ninsert_s " << b.insert_s << "\nsync_s " << b.sync_s
      << "\ninsert_peak_mib " << b.insert_peak_mib << "\nsync_peak_mib " << b.sync_peak_mib << "\n";
}

bool load_stats(const std::string& dir, BuildStats* b) {
    std::ifstream f(stats_file(dir));
    if (!f) return false;
    std::map<std::string, double> kv;
    std::string key;
    double val;
    while (f >> key >> val) kv[key] = val;
    if (kv["data_version"] != kDataVersion || !kv.count("chunks") || !kv.count("sync_s"))
        return false;
    b->chunks = int64_t(kv["chunks"]);
    b->documents = int64_t(kv["documents"]);
    b->gen_s = kv["gen_s"];
    b->insert_s = kv["insert_s"];
    b->sync_s = kv["sync_s"];
    b->insert_peak_mib = kv["insert_peak_mib"];
    b->sync_peak_mib = kv["sync_peak_mib"];
    return true;
}

// Stage 1: a fresh store of n_chunks chunks in documents of chunks_per_doc chunks,
// kChunksPerPage chunks per page.
BuildStats fill_store(const std::string& dir, int64_t n_chunks, int chunks_per_doc,
                      const Vocabulary& vocab, uint64_t seed) {
    BuildStats b;
    b.chunks = n_chunks;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    auto lock = ragd::DataDirLock::try_acquire(dir);
    if (!lock) throw ragd::Error(ragd::Error::Code::Busy, dir + " is locked");

    reset_peak_rss();
    ragd::Store store(dir);
    Rng rng(seed * 0x100000001b3ull + uint64_t(n_chunks));
    int64_t made = 0;
    double last_report = now_s();
    while (made < n_chunks) {
        double t0 = now_s();
        int n = int(std::min<int64_t>(chunks_per_doc, n_chunks - made));
        std::vector<std::string> pages;
        std::vector<ragd::NewChunk> chunks(static_cast<size_t>(n));
        int64_t offset = 0;  // in the document text
        int topic = int(rng.below(kTopics));
        for (int i = 0; i < n; ++i) {
            ragd::NewChunk& c = chunks[size_t(i)];
            c.text = make_chunk_text(vocab, rng, topic);
            if (i % kChunksPerPage == 0) {
                if (!pages.empty()) offset += 2;  // "\n\f"
                pages.emplace_back();
            } else {
                pages.back() += "\n\n";
                offset += 2;
            }
            c.page_start = c.page_end = int(pages.size());
            c.start = offset;
            c.end = offset + int64_t(c.text.size());
            c.n_tokens = ragd::approx_tokens(c.text);
            pages.back() += c.text;
            offset = c.end;
        }
        ragd::DocumentRow doc;
        char name[64];
        std::snprintf(name, sizeof name, "doc-%07" PRId64 ".txt", b.documents);
        doc.name = name;
        doc.path = "/bench/synthetic/";
        doc.path += doc.name;  // in two steps: GCC 12's -Wrestrict misfires on literal + string
        doc.hash = ragd::sha256_hex("ragd-bench " + std::to_string(seed) + " " + doc.name);
        doc.kind = "text";
        doc.n_pages = int(pages.size());
        doc.text_bytes = offset;
        doc.bytes = offset;
        double t1 = now_s();
        int64_t id = 0;
        store.put_document(doc, pages, chunks, &id);
        double t2 = now_s();
        b.gen_s += t1 - t0;
        b.insert_s += t2 - t1;
        made += n;
        ++b.documents;
        if (t2 - last_report > 30) {
            std::fprintf(stderr, "  inserted %" PRId64 " / %" PRId64 " chunks\n", made, n_chunks);
            last_report = t2;
        }
    }
    b.insert_peak_mib = peak_rss_mib();
    save_stats(dir, b);
    return b;
}

// Stage 2: the derived indexes, built from the store by Indexes::sync.
void build_indexes(const std::string& dir, BuildStats* b) {
    auto lock = ragd::DataDirLock::try_acquire(dir);
    if (!lock) throw ragd::Error(ragd::Error::Code::Busy, dir + " is locked");
    ragd::Config cfg;
    cfg.data_dir = dir;
    reset_peak_rss();
    ragd::Store store(dir);
    double t0 = now_s();
    ragd::Indexes idx(cfg, ragd::make_hashed_embedder());
    idx.sync(store);
    b->sync_s = now_s() - t0;
    b->sync_peak_mib = peak_rss_mib();
    save_stats(dir, *b);
}

// ---------------------------------------------------------------------------------------
// Measure

struct Latency {
    double p50 = 0, p95 = 0, p99 = 0, mean = 0, qps = 0;
    double avg_hits = 0;
    int omp_threads = 0;  // 0: not measured
};

Latency summarize(std::vector<double> ms, int64_t hits) {
    Latency l;
    if (ms.empty()) return l;
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double q) {
        size_t i = size_t(std::ceil(q * double(ms.size())));
        return ms[std::min(ms.size() - 1, i > 0 ? i - 1 : 0)];
    };
    double sum = 0;
    for (double x : ms) sum += x;
    l.p50 = pct(0.50);
    l.p95 = pct(0.95);
    l.p99 = pct(0.99);
    l.mean = sum / double(ms.size());
    l.qps = 1000.0 / l.mean;
    l.avg_hits = double(hits) / double(ms.size());
    return l;
}

struct Result {
    int64_t n = 0;
    BuildStats build;
    int64_t db_bytes = 0, xapian_bytes = 0, faiss_bytes = 0;
    double open_s = 0, open_rss_mib = 0, query_peak_mib = 0;
    Latency lat[5];  // hybrid, keyword, vector; then hybrid, vector with 1 OpenMP thread
    double known_at_k[3] = {-1, -1, -1};
    double recall = -1;  // vector recall@k vs exact, -1 if skipped
    double embed_per_s = 0;
    bool store_only = false;
};

const ragd::SearchMode kModes[3] = {ragd::SearchMode::Hybrid, ragd::SearchMode::Keyword,
                                    ragd::SearchMode::Vector};
// The latency runs: each mode, then hybrid and vector again with one OpenMP thread.
const int kRunMode[5] = {0, 1, 2, 0, 2};

struct Options {
    std::vector<int64_t> sizes = {10000, 100000};
    std::string data = "/tmp/ragd-bench";
    int queries = 500;
    int k = 10;
    int known = 200;
    int recall_queries = 1000;
    int64_t recall_max = 100000;
    int chunks_per_doc = 100;
    uint64_t seed = 1;
    bool rebuild = false;
    bool store_only = false;
    std::vector<int> ef_search;  // efSearch values for the recall figure; empty: the default
    // --quality
    bool quality = false;
    std::string corpus, ragd, embed_model, rerank_model;
    int rerank_top_n = 50;
    bool random_models = false;
};

Result run_size(const Options& opt, const Vocabulary& vocab, int64_t n) {
    Result r;
    r.n = n;
    std::string dir = opt.data + "/chunks-" + std::to_string(n);
    std::printf("== %" PRId64 " chunks (%s)\n", n, dir.c_str());
    std::fflush(stdout);

    bool have = !opt.rebuild && load_stats(dir, &r.build) && r.build.chunks == n;
    if (!have) {
        r.build = fill_store(dir, n, opt.chunks_per_doc, vocab, opt.seed);
    } else {
        std::printf("reusing the %s built earlier (--rebuild to start over)\n",
                    r.build.sync_s < 0 ? "store" : "data directory");
    }
    const BuildStats& b = r.build;
    std::printf("build: %" PRId64 " documents, text generation %.1f s\n", b.documents, b.gen_s);
    std::printf("build: SQLite insert   %8.1f s  %9.0f chunks/s  peak RSS %7.0f MiB\n", b.insert_s,
                double(n) / b.insert_s, b.insert_peak_mib);
    std::fflush(stdout);
    if (opt.store_only) {
        r.db_bytes = path_bytes(dir + "/ragd.db") + path_bytes(dir + "/ragd.db-wal");
        std::printf("disk: ragd.db %.0f MiB (--store-only: no indexes, no queries)\n",
                    mib(r.db_bytes));
        r.store_only = true;
        return r;
    }
    if (b.sync_s < 0) build_indexes(dir, &r.build);
    std::printf("build: index (sync)    %8.1f s  %9.0f chunks/s  peak RSS %7.0f MiB\n", b.sync_s,
                double(n) / b.sync_s, b.sync_peak_mib);
    r.db_bytes = path_bytes(dir + "/ragd.db") + path_bytes(dir + "/ragd.db-wal") +
                 path_bytes(dir + "/ragd.db-shm");
    r.xapian_bytes = path_bytes(dir + "/xapian");
    r.faiss_bytes = path_bytes(dir + "/vectors.faiss");
    std::printf("disk: ragd.db %.0f MiB, xapian/ %.0f MiB, vectors.faiss %.0f MiB\n",
                mib(r.db_bytes), mib(r.xapian_bytes), mib(r.faiss_bytes));

    // Reopen as a fresh process would: Store, Indexes (loads FAISS), sync (a no-op when the
    // indexes are current). If the indexes were made by another build of ragd (say its
    // embedder changed since), sync rebuilds them: that is timed as the index build.
    reset_peak_rss();
    double rss0 = rss_mib();
    double t0 = now_s();
    ragd::Config cfg;
    cfg.data_dir = dir;
    auto lock = ragd::DataDirLock::try_acquire(dir);
    ragd::Store store(dir);
    ragd::Indexes idx(cfg, ragd::make_hashed_embedder());
    bool current = idx.keyword_docs() == n && idx.vectors() == n;
    double t1 = now_s();
    idx.sync(store);
    if (current) {
        r.open_s = now_s() - t0;
    } else {
        r.open_s = t1 - t0;
        r.build.sync_s = now_s() - t1;
        r.build.sync_peak_mib = peak_rss_mib();
        save_stats(dir, r.build);
        std::printf(
            "build: the indexes were stale (another ragd build); rebuilt in %.1f s, "
            "peak RSS %.0f MiB\n",
            r.build.sync_s, r.build.sync_peak_mib);
    }
    r.open_rss_mib = rss_mib() - rss0;
    ragd::StoreCounts counts = store.counts();
    int64_t kdocs = idx.keyword_docs(), vecs = idx.vectors();
    std::printf("open: %.2f s, +%.0f MiB RSS; chunks %" PRId64 ", keyword_docs %" PRId64
                ", vectors %" PRId64 "%s; embedder %s\n",
                r.open_s, r.open_rss_mib, counts.chunks, kdocs, vecs,
                counts.chunks == n && kdocs == n && vecs == n ? "" : "  MISMATCH",
                idx.embedder().name().c_str());
    std::fflush(stdout);

    // Latency per mode, the same queries for each. If OpenMP has more than one thread,
    // the modes that touch FAISS run again with one OpenMP thread (see the note on top).
    Rng qrng(opt.seed * 7919 + 17);
    std::vector<std::string> queries;
    for (int i = 0; i < opt.queries; ++i) queries.push_back(make_query(vocab, qrng));
    int omp_default = omp_get_max_threads();
    for (int m = 0; m < 5; ++m) {
        ragd::SearchRequest req;
        req.k = opt.k;
        req.mode = kModes[kRunMode[m]];
        int threads = m < 3 ? omp_default : 1;
        if (m >= 3 && omp_default == 1) break;
        omp_set_num_threads(threads);
        for (int i = 0; i < 50; ++i) {  // warm-up
            req.query = queries[size_t(i) % queries.size()];
            ragd::search(idx, store, req, cfg);
        }
        std::vector<double> ms;
        int64_t hits = 0;
        for (const std::string& q : queries) {
            req.query = q;
            double s0 = now_s();
            hits += int64_t(ragd::search(idx, store, req, cfg).size());
            ms.push_back((now_s() - s0) * 1000.0);
        }
        r.lat[m] = summarize(ms, hits);
        r.lat[m].omp_threads = threads;
        const Latency& l = r.lat[m];
        std::printf(
            "query %-7s p50 %7.2f ms  p95 %7.2f  p99 %7.2f  mean %7.2f  %7.1f QPS"
            "  (%.1f hits/query, %d OpenMP thread%s)\n",
            ragd::search_mode_name(req.mode), l.p50, l.p95, l.p99, l.mean, l.qps, l.avg_hits,
            threads, threads == 1 ? "" : "s");
        std::fflush(stdout);
    }
    omp_set_num_threads(omp_default);

    // Known-item: the 4 rarest words of a random chunk should find it.
    std::vector<std::pair<int64_t, std::string>> items;  // chunk id, query
    if (opt.known > 0) {
        std::vector<int64_t> ids = store.chunk_ids("", 0);
        Rng krng(opt.seed * 104729 + 3);
        while (int(items.size()) < opt.known && !ids.empty()) {
            int64_t id = ids[krng.below(ids.size())];
            std::optional<ragd::ChunkRow> c = store.chunk(id);
            if (!c) continue;
            std::set<std::pair<size_t, std::string>> by_rank;  // rarest = highest rank
            for (const std::string& w : words_of(c->text)) {
                auto it = vocab.rank.find(w);
                if (it != vocab.rank.end() && it->second >= vocab.first_content)
                    by_rank.insert({it->second, w});
            }
            std::string q;
            int taken = 0;
            for (auto it = by_rank.rbegin(); it != by_rank.rend() && taken < 4; ++it, ++taken) {
                if (!q.empty()) q += ' ';
                q += it->second;
            }
            if (!q.empty()) items.push_back({id, q});
        }
        for (int m = 0; m < 3; ++m) {
            ragd::SearchRequest req;
            req.k = opt.k;
            req.mode = kModes[m];
            int found = 0;
            for (const auto& [id, q] : items) {
                req.query = q;
                for (const ragd::Hit& h : ragd::search(idx, store, req, cfg)) {
                    if (h.chunk.id == id) {
                        ++found;
                        break;
                    }
                }
            }
            r.known_at_k[m] = items.empty() ? 0 : double(found) / double(items.size());
            std::printf(
                "known-item %-7s success@%d %.3f  (%zu queries of a chunk's 4 rarest "
                "words)\n",
                ragd::search_mode_name(kModes[m]), opt.k, r.known_at_k[m], items.size());
        }
        std::fflush(stdout);
    }
    r.query_peak_mib = peak_rss_mib();
    std::printf("memory: peak RSS %.0f MiB from the reopen through the queries\n",
                r.query_peak_mib);

    // Vector recall@k: HNSW (through Indexes) against exact inner product.
    if (opt.recall_queries > 0 && n <= opt.recall_max) {
        const ragd::Embedder& emb = idx.embedder();
        int d = emb.dim();
        std::vector<float> xs;
        std::vector<int64_t> xid;
        xs.reserve(size_t(n) * size_t(d));
        std::vector<std::string> batch;
        double e0 = now_s();
        auto flush = [&] {
            size_t at = xs.size();
            xs.resize(at + batch.size() * size_t(d));
            emb.embed(batch, xs.data() + at);
            batch.clear();
        };
        store.for_each_chunk([&](const ragd::ChunkRow& c) {
            batch.push_back(c.text);
            xid.push_back(c.id);
            if (batch.size() == 256) flush();
        });
        flush();
        double embed_s = now_s() - e0;
        r.embed_per_s = double(xid.size()) / embed_s;

        Rng rrng(opt.seed * 31337 + 5);
        int nq = opt.recall_queries;
        std::vector<std::string> rq;
        for (int i = 0; i < nq; ++i) rq.push_back(make_query(vocab, rrng));

        // Exact answers: the random queries, then the known-item queries.
        int nk = int(items.size());
        for (const auto& item : items) rq.push_back(item.second);
        std::vector<float> qv(rq.size() * size_t(d));
        emb.embed(rq, qv.data());
        faiss::IndexFlatIP flat(d);
        flat.add(faiss::Index::idx_t(xid.size()), xs.data());
        size_t kk = size_t(opt.k);
        std::vector<float> dist(rq.size() * kk);
        std::vector<faiss::Index::idx_t> lab(rq.size() * kk);
        double b0 = now_s();
        flat.search(faiss::Index::idx_t(rq.size()), qv.data(), opt.k, dist.data(), lab.data());
        double brute_s = now_s() - b0;
        std::vector<std::unordered_set<int64_t>> exact(rq.size());
        double exact_top1 = 0;
        int scored = 0;
        for (size_t i = 0; i < rq.size(); ++i) {
            for (size_t j = 0; j < kk; ++j) {
                faiss::Index::idx_t l = lab[i * kk + j];
                // A zero query vector has no meaningful answer: leave its set empty.
                if (l >= 0 && dist[i * kk + j] > 0) exact[i].insert(xid[size_t(l)]);
            }
            if (int(i) < nq && !exact[i].empty()) {
                ++scored;
                exact_top1 += dist[i * kk];
            }
        }
        int exact_known = 0;
        for (int i = 0; i < nk; ++i)
            exact_known += int(exact[size_t(nq + i)].count(items[size_t(i)].first));
        std::printf(
            "exact inner product: %.1f ms/query over %zu vectors (FAISS flat); embedding"
            " %.0f chunks/s; mean top-1 cosine %.3f\n",
            brute_s * 1000.0 / double(rq.size()), xid.size(), r.embed_per_s,
            scored ? exact_top1 / scored : 0.0);
        if (nk > 0) {
            std::printf("known-item exact  success@%d %.3f  (the embedding itself, no HNSW)\n",
                        opt.k, double(exact_known) / nk);
        }

        // HNSW through Indexes at each efSearch (reopened with that setting), timed with one
        // OpenMP thread.
        omp_set_num_threads(1);
        std::vector<int> efs = opt.ef_search;
        if (efs.empty()) efs.push_back(cfg.hnsw_ef_search);
        for (int ef : efs) {
            ragd::Config c2 = cfg;
            c2.hnsw_ef_search = ef;
            std::unique_ptr<ragd::Indexes> own;
            ragd::Indexes* use = &idx;
            if (ef != cfg.hnsw_ef_search) {
                own = std::make_unique<ragd::Indexes>(c2, ragd::make_hashed_embedder());
                use = own.get();
            }
            int64_t inter = 0, total = 0;
            double top1 = 0, t_ms = 0;
            int found = 0;
            for (size_t i = 0; i < rq.size(); ++i) {
                if (exact[i].empty() && int(i) < nq) continue;
                double s0 = now_s();
                std::vector<ragd::VectorHit> hits = use->vector_search(rq[i], opt.k, {}, store);
                double ms = (now_s() - s0) * 1000.0;
                if (int(i) < nq) {
                    t_ms += ms;
                    for (const ragd::VectorHit& h : hits)
                        inter += int64_t(exact[i].count(h.chunk_id));
                    total += int64_t(exact[i].size());
                    if (!hits.empty()) top1 += hits[0].score;
                } else {
                    int64_t want = items[i - size_t(nq)].first;
                    for (const ragd::VectorHit& h : hits) found += h.chunk_id == want;
                }
            }
            double recall = total ? double(inter) / double(total) : 0;
            if (ef == cfg.hnsw_ef_search) r.recall = recall;
            std::printf(
                "vector recall@%d %.4f at efSearch %d  (%d queries, HNSW M=32; %.2f ms/query"
                " mean, 1 OpenMP thread; mean top-1 cosine %.3f; known-item success@%d %.3f)\n",
                opt.k, recall, std::max(ef, opt.k), scored, scored ? t_ms / scored : 0.0,
                scored ? top1 / scored : 0.0, opt.k, nk ? double(found) / nk : 0.0);
            std::fflush(stdout);
        }
        omp_set_num_threads(omp_default);
    } else if (opt.recall_queries > 0) {
        std::printf("vector recall: skipped (N > --recall-max %" PRId64 ")\n", opt.recall_max);
    }
    std::fflush(stdout);
    return r;
}

void print_summary(const std::vector<Result>& rs, int k) {
    std::printf(
        "\n| chunks | docs | SQLite insert s | index build s | peak RSS build MiB | "
        "ragd.db MiB | xapian MiB | faiss MiB | open s |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Result& r : rs) {
        if (r.store_only) {
            std::printf("| %" PRId64 " | %" PRId64 " | %.1f | - | %.0f | %.0f | - | - | - |\n", r.n,
                        r.build.documents, r.build.insert_s, r.build.insert_peak_mib,
                        mib(r.db_bytes));
            continue;
        }
        std::printf("| %" PRId64 " | %" PRId64
                    " | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %.2f |\n",
                    r.n, r.build.documents, r.build.insert_s, r.build.sync_s,
                    std::max(r.build.insert_peak_mib, r.build.sync_peak_mib), mib(r.db_bytes),
                    mib(r.xapian_bytes), mib(r.faiss_bytes), r.open_s);
    }
    if (std::all_of(rs.begin(), rs.end(), [](const Result& r) { return r.store_only; })) return;
    std::printf(
        "\n| chunks | mode | OpenMP threads | p50 ms | p95 ms | p99 ms | mean ms | QPS | "
        "known-item success@%d |\n",
        k);
    std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Result& r : rs) {
        if (r.store_only) continue;
        for (int m = 0; m < 5; ++m) {
            const Latency& l = r.lat[m];
            if (l.omp_threads == 0) continue;
            std::printf("| %" PRId64 " | %s | %d | %.2f | %.2f | %.2f | %.2f | %.0f | %.3f |\n",
                        r.n, ragd::search_mode_name(kModes[kRunMode[m]]), l.omp_threads, l.p50,
                        l.p95, l.p99, l.mean, l.qps, r.known_at_k[kRunMode[m]]);
        }
    }
    for (const Result& r : rs) {
        if (r.recall >= 0) {
            std::printf("\nvector recall@%d at %" PRId64 " chunks: %.4f", k, r.n, r.recall);
        }
    }
    std::printf("\n");
}

// ---------------------------------------------------------------------------------------
// Retrieval quality on corpus/questions.json (--quality)

struct Question {
    std::string question, document, answer;
    int page = 0;
};

std::string fold(const std::string& s) {
    std::string out;
    bool space = false;
    for (unsigned char c : s) {
        if (std::isspace(c)) {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += char(std::tolower(c));
    }
    return out;
}

bool answers(const ragd::Hit& h, const Question& q) {
    return h.chunk.document == q.document && h.chunk.page_start <= q.page &&
           q.page <= h.chunk.page_end &&
           fold(h.chunk.text).find(fold(q.answer)) != std::string::npos;
}

struct Quality {
    double recall5 = 0, mrr10 = 0, ms = 0;
    std::vector<int> ranks;  // per question, 0 = not in the top 10
};

Quality evaluate(ragd::Indexes& idx, ragd::Store& store, const ragd::Config& cfg,
                 ragd::SearchMode mode, const ragd::Reranker* rr, const std::vector<Question>& qs) {
    Quality out;
    double t0 = now_s();
    for (const Question& q : qs) {
        ragd::SearchRequest req;
        req.query = q.question;
        req.k = 10;
        req.mode = mode;
        std::vector<ragd::Hit> hits = ragd::search(idx, store, req, cfg, rr);
        int rank = 0;
        for (size_t i = 0; i < hits.size() && !rank; ++i)
            if (answers(hits[i], q)) rank = int(i) + 1;
        out.ranks.push_back(rank);
        if (rank && rank <= 5) out.recall5 += 1;
        if (rank) out.mrr10 += 1.0 / rank;
    }
    out.ms = (now_s() - t0) * 1000 / std::max<size_t>(qs.size(), 1);
    out.recall5 /= double(std::max<size_t>(qs.size(), 1));
    out.mrr10 /= double(std::max<size_t>(qs.size(), 1));
    return out;
}

// `ragd ingest` of the corpus into DIR (kept between runs when complete).
void ingest_corpus(const Options& opt, const std::string& dir, const std::string& embed_model) {
    if (fs::exists(dir + "/quality-done")) return;
    fs::remove_all(dir);
    std::string cmd = "'" + opt.ragd + "' ingest -q --data '" + dir + "'";
    if (!embed_model.empty()) cmd += " --embed-model '" + embed_model + "'";
    cmd += " '" + opt.corpus + "' > /dev/null";
    double t0 = now_s();
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    std::printf("ingested %s into %s in %.1f s\n", opt.corpus.c_str(), dir.c_str(), now_s() - t0);
    std::ofstream(dir + "/quality-done") << "1\n";
}

int run_quality(Options opt) {
    // BUILD/bench/query_bench: BUILD/ragd, and the corpus of the source tree BUILD is in.
    std::error_code ec;
    fs::path build = fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path();
    if (opt.corpus.empty()) opt.corpus = (build.parent_path() / "corpus").string();
    if (opt.ragd.empty()) opt.ragd = (build / "ragd").string();
    if (!fs::exists(opt.corpus + "/questions.json"))
        throw std::runtime_error("no questions.json in " + opt.corpus + " (pass --corpus DIR)");
    if (opt.embed_model.empty())
        if (const char* e = std::getenv("RAGD_EMBED_MODEL"); e && *e) opt.embed_model = e;
    if (opt.rerank_model.empty())
        if (const char* e = std::getenv("RAGD_RERANK_MODEL"); e && *e) opt.rerank_model = e;
    fs::create_directories(opt.data);
    bool random = false;
    if (opt.random_models && opt.embed_model.empty() && opt.rerank_model.empty()) {
        ragd::test::BertSpec spec;
        spec.n_embd = 64;
        spec.n_ff = 128;
        spec.n_ctx = 256;
        opt.embed_model = opt.data + "/random-embed.gguf";
        ragd::test::write_bert_model(opt.embed_model, spec);
        spec.cls_head = true;
        spec.pooling = 4;
        spec.seed = 2;
        opt.rerank_model = opt.data + "/random-rerank.gguf";
        ragd::test::write_bert_model(opt.rerank_model, spec);
        random = true;
    }

    std::vector<Question> qs;
    {
        std::ifstream in(opt.corpus + "/questions.json");
        nlohmann::json j = nlohmann::json::parse(in);
        if (j.is_object()) j = j["questions"];
        for (const auto& q : j)
            qs.push_back(
                {q["question"], q["document"], q["answer_contains"], q["page"].get<int>()});
    }
    std::printf("retrieval quality: %zu questions from %s/questions.json; recall@5, MRR@10\n",
                qs.size(), opt.corpus.c_str());

    struct Row {
        std::string stage;
        Quality q;
    };
    std::vector<Row> rows;
    std::unique_ptr<ragd::Reranker> rr;
    std::string rr_label;
    if (!opt.rerank_model.empty()) {
        rr = ragd::make_gguf_reranker(opt.rerank_model);
        rr_label =
            fs::path(opt.rerank_model).filename().string() + (random ? ", random weights" : "");
    }
    auto stages = [&](const std::string& dir, const std::string& embed_model,
                      const std::string& label, bool with_keyword) {
        ingest_corpus(opt, dir, embed_model);
        ragd::Config cfg;
        cfg.data_dir = dir;
        cfg.embed_model = embed_model.empty() ? ragd::kBuiltinEmbedder : embed_model;
        cfg.rerank_top_n = opt.rerank_top_n;
        ragd::Store store(dir);
        ragd::EmbedderChoice ch = ragd::choose_embedder(cfg);
        ragd::Indexes idx(cfg, ch.target, ch.resolver);
        idx.sync(store);
        if (with_keyword)
            rows.push_back({"keyword (BM25)",
                            evaluate(idx, store, cfg, ragd::SearchMode::Keyword, nullptr, qs)});
        rows.push_back({"vector (" + label + ")",
                        evaluate(idx, store, cfg, ragd::SearchMode::Vector, nullptr, qs)});
        rows.push_back({"hybrid RRF (" + label + ")",
                        evaluate(idx, store, cfg, ragd::SearchMode::Hybrid, nullptr, qs)});
        if (rr)
            rows.push_back({"hybrid (" + label + ") + rerank top " +
                                std::to_string(opt.rerank_top_n) + " (" + rr_label + ")",
                            evaluate(idx, store, cfg, ragd::SearchMode::Hybrid, rr.get(), qs)});
    };
    stages(opt.data + "/quality-builtin", "", "built-in hashed", true);
    if (!opt.embed_model.empty())
        stages(opt.data + "/quality-model", opt.embed_model,
               fs::path(opt.embed_model).filename().string() + (random ? ", random weights" : ""),
               false);

    std::printf("\n| stage | recall@5 | MRR@10 | ms/query | ranks (0 = not in top 10) |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const Row& r : rows) {
        std::string ranks;
        for (int x : r.q.ranks) {
            if (!ranks.empty()) ranks += ' ';
            ranks += std::to_string(x);
        }
        std::printf("| %s | %.3f | %.3f | %.1f | %s |\n", r.stage.c_str(), r.q.recall5, r.q.mrr10,
                    r.q.ms, ranks.c_str());
    }
    if (random)
        std::printf(
            "\nThe models are random-weight (--random-models): their rows exercise the "
            "stages and say nothing about quality. Pass real models with --embed-model / "
            "--rerank-model (or $RAGD_EMBED_MODEL / $RAGD_RERANK_MODEL).\n");
    return 0;
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(
        stderr,
        "query_bench: %s\n"
        "usage: query_bench [--chunks 10k,100k,1M] [--data DIR] [--queries N] [--k K]\n"
        "                   [--known N] [--recall-queries N] [--recall-max CHUNKS]\n"
        "                   [--ef-search 64,256] [--chunks-per-doc N] [--seed S] [--rebuild]\n"
        "                   [--store-only]\n"
        "       query_bench --quality [--corpus DIR] [--data DIR] [--ragd PATH]\n"
        "                   [--embed-model E.gguf] [--rerank-model R.gguf] [--rerank-top-n N]\n"
        "                   [--random-models]\n",
        why);
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        auto count = [&](int64_t lo) {
            std::string v = value();
            int64_t n = parse_count(v);
            if (n < lo && !(lo == 0 && v == "0")) usage(("bad value for " + a + ": " + v).c_str());
            return n;
        };
        if (a == "--chunks") {
            o.sizes.clear();
            std::stringstream ss(value());
            std::string part;
            while (std::getline(ss, part, ',')) {
                int64_t n = parse_count(part);
                if (n < 1) usage(("bad size: " + part).c_str());
                o.sizes.push_back(n);
            }
            if (o.sizes.empty()) usage("--chunks needs sizes");
        } else if (a == "--data") {
            o.data = value();
        } else if (a == "--queries") {
            o.queries = int(count(1));
        } else if (a == "--k") {
            o.k = int(count(1));
        } else if (a == "--known") {
            o.known = int(count(0));
        } else if (a == "--recall-queries") {
            o.recall_queries = int(count(0));
        } else if (a == "--recall-max") {
            o.recall_max = count(0);
        } else if (a == "--chunks-per-doc") {
            o.chunks_per_doc = int(count(1));
        } else if (a == "--seed") {
            o.seed = uint64_t(count(1));
        } else if (a == "--rebuild") {
            o.rebuild = true;
        } else if (a == "--ef-search") {
            std::stringstream ss(value());
            std::string part;
            while (std::getline(ss, part, ',')) {
                int64_t v = parse_count(part);
                if (v < 1 || v > 100000) usage(("bad efSearch: " + part).c_str());
                o.ef_search.push_back(int(v));
            }
        } else if (a == "--store-only") {
            o.store_only = true;
        } else if (a == "--quality") {
            o.quality = true;
        } else if (a == "--corpus") {
            o.corpus = value();
        } else if (a == "--ragd") {
            o.ragd = value();
        } else if (a == "--embed-model") {
            o.embed_model = value();
        } else if (a == "--rerank-model") {
            o.rerank_model = value();
        } else if (a == "--rerank-top-n") {
            o.rerank_top_n = int(count(1));
        } else if (a == "--random-models") {
            o.random_models = true;
        } else if (a == "-h" || a == "--help") {
            usage("measures ragd retrieval on synthetic chunks");
        } else {
            usage(("unknown argument " + a).c_str());
        }
    }
    if (o.k > 1000) usage("--k must be <= 1000");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_options(argc, argv);
    if (opt.quality) {
        try {
            return run_quality(opt);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "query_bench: %s\n", e.what());
            return 1;
        }
    }
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    std::printf("query_bench: host %s, %ld CPUs, sizes", host, sysconf(_SC_NPROCESSORS_ONLN));
    for (int64_t n : opt.sizes) std::printf(" %" PRId64, n);
    std::printf(", %d queries/mode, k=%d, OpenMP threads %d\n", opt.queries, opt.k,
                omp_get_max_threads());

    Vocabulary vocab(50000);
    std::printf(
        "vocabulary: %zu words (%zu function words, %zu domain terms, rest generated),"
        " Zipf s=1; %d topics of %d words, %.0f%% of a document's words\n",
        vocab.words.size(), vocab.first_content, sizeof kDomainWords / sizeof kDomainWords[0],
        kTopics, kTopicWords, kTopicShare * 100);
    std::vector<Result> results;
    try {
        for (int64_t n : opt.sizes) results.push_back(run_size(opt, vocab, n));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "query_bench: %s\n", e.what());
        return 1;
    }
    print_summary(results, opt.k);
    return 0;
}
