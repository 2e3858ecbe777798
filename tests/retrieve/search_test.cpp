// search() over a real Store and real indexes (SQLite, Xapian, FAISS, hashed embedder).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "retrieve/retrieve.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

// Stores a document whose pages are lists of paragraphs, one chunk per paragraph.
int64_t put_doc(Store& store, const std::string& path, const std::string& collection,
                const std::vector<std::vector<std::string>>& pages) {
    std::vector<std::string> page_texts;
    std::vector<NewChunk> chunks;
    int64_t offset = 0;  // of the page in the document text
    for (size_t p = 0; p < pages.size(); p++) {
        std::string text;
        for (const std::string& para : pages[p]) {
            if (!text.empty()) text += "\n\n";
            NewChunk c;
            c.page_start = c.page_end = static_cast<int>(p) + 1;
            c.start = offset + static_cast<int64_t>(text.size());
            text += para;
            c.end = offset + static_cast<int64_t>(text.size());
            c.text = para;
            c.n_tokens = approx_tokens(para);
            chunks.push_back(c);
        }
        offset += static_cast<int64_t>(text.size()) + 2;  // "\n\f" between pages
        page_texts.push_back(text);
    }
    DocumentRow d;
    d.hash = sha256_hex(path);
    d.path = path;
    d.name = std::filesystem::path(path).filename();
    d.collection = collection;
    d.kind = "text";
    d.bytes = offset;
    d.n_pages = static_cast<int>(pages.size());
    d.text_bytes = offset - 2;
    int64_t id = 0;
    store.put_document(d, page_texts, chunks, &id);
    return id;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

class SearchTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cfg.data_dir = dir.path();
        store = std::make_unique<Store>(dir.path());
        indexes = std::make_unique<Indexes>(cfg, make_hashed_embedder());
        lease = put_doc(*store, "/docs/lease.pdf", "legal",
                        {{"This lease agreement is made between Alice Landlord and Bob Tenant.",
                          "The monthly rent is 900 euros, payable on the first day of each "
                          "month."},
                         {"The tenant must give three months written notice before terminating "
                          "the lease.",
                          "The security deposit equals two months of rent and is returned "
                          "within thirty days."}});
        leaflet = put_doc(*store, "/docs/leaflet.pdf", "medical",
                          {{"Ibuprofen relieves pain and reduces fever and inflammation.",
                            "Adults may take 200 to 400 mg of ibuprofen every four to six hours."},
                           {"Do not take more than 1200 mg of ibuprofen in one day without "
                            "medical advice.",
                            "Store the tablets below 25 degrees in a dry place."}});
        aspirin = put_doc(*store, "/docs/aspirin.txt", "medical",
                          {{"Aspirin reduces fever and thins the blood.",
                            "Children under sixteen should not take aspirin."}});
        indexes->sync(*store);
    }

    std::vector<Hit> run(const std::string& q, SearchMode mode, int k = 5,
                         IndexFilter filter = {}) {
        SearchRequest req;
        req.query = q;
        req.k = k;
        req.mode = mode;
        req.filter = filter;
        return search(*indexes, *store, req, cfg);
    }

    // Every hit is a complete chunk row that agrees with the stored document text.
    void expect_rows(const std::vector<Hit>& hits) {
        for (const Hit& h : hits) {
            const ChunkRow& c = h.chunk;
            ASSERT_GT(c.id, 0);
            std::string text = store->document_text(c.document_id);
            ASSERT_LE(c.end, static_cast<int64_t>(text.size()));
            EXPECT_EQ(text.substr(c.start, c.end - c.start), c.text);
            EXPECT_FALSE(c.document.empty());
            EXPECT_EQ(c.path, "/docs/" + c.document);
            EXPECT_GE(c.page_start, 1);
        }
    }

    test::TempDir dir;
    Config cfg;
    std::unique_ptr<Store> store;
    std::unique_ptr<Indexes> indexes;
    int64_t lease = 0, leaflet = 0, aspirin = 0;
};

TEST_F(SearchTest, RejectsBadRequests) {
    for (int k : {0, -1, 1001}) {
        try {
            run("rent", SearchMode::Hybrid, k);
            ADD_FAILURE() << "k = " << k;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        }
    }
    for (const char* q : {"", "   ", "\n\t"}) {
        try {
            run(q, SearchMode::Keyword);
            ADD_FAILURE() << "query '" << q << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        }
    }
    EXPECT_NO_THROW(run("rent", SearchMode::Hybrid, 1000));
}

TEST_F(SearchTest, KeywordMode) {
    std::vector<Hit> hits = run("ibuprofen", SearchMode::Keyword, 10);
    ASSERT_EQ(hits.size(), 3u);
    expect_rows(hits);
    for (size_t i = 0; i < hits.size(); i++) {
        const Hit& h = hits[i];
        EXPECT_NE(lower(h.chunk.text).find("ibuprofen"), std::string::npos);
        EXPECT_EQ(h.chunk.document, "leaflet.pdf");
        EXPECT_EQ(h.chunk.collection, "medical");
        EXPECT_EQ(h.keyword_rank, static_cast<int>(i) + 1);
        EXPECT_EQ(h.vector_rank, 0);
        EXPECT_GT(h.score, 0);
        EXPECT_EQ(h.score, h.keyword_score);
        if (i > 0) {
            EXPECT_GE(hits[i - 1].score, h.score);
        }
    }
    // Pages come from the store: the 1200 mg chunk is on page 2.
    auto it = std::find_if(hits.begin(), hits.end(), [](const Hit& h) {
        return h.chunk.text.find("1200 mg") != std::string::npos;
    });
    ASSERT_NE(it, hits.end());
    EXPECT_EQ(it->chunk.page_start, 2);

    EXPECT_EQ(run("ibuprofen", SearchMode::Keyword, 2).size(), 2u);
    EXPECT_TRUE(run("zeppelin", SearchMode::Keyword).empty());
}

TEST_F(SearchTest, VectorMode) {
    const std::string text = "Store the tablets below 25 degrees in a dry place.";
    std::vector<Hit> hits = run(text, SearchMode::Vector, 3);
    ASSERT_EQ(hits.size(), 3u);
    expect_rows(hits);
    EXPECT_EQ(hits[0].chunk.text, text);
    EXPECT_NEAR(hits[0].score, 1.0, 1e-4);  // the query is the chunk: cosine 1
    for (size_t i = 0; i < hits.size(); i++) {
        EXPECT_EQ(hits[i].vector_rank, static_cast<int>(i) + 1);
        EXPECT_EQ(hits[i].keyword_rank, 0);
        EXPECT_EQ(hits[i].score, hits[i].vector_score);
        if (i > 0) {
            EXPECT_GE(hits[i - 1].score, hits[i].score);
        }
    }
}

TEST_F(SearchTest, HybridFusesBothRankings) {
    const std::string q = "tenant notice before terminating the lease";
    std::vector<Hit> hybrid = run(q, SearchMode::Hybrid, 5);
    ASSERT_FALSE(hybrid.empty());
    expect_rows(hybrid);
    EXPECT_NE(hybrid[0].chunk.text.find("written notice"), std::string::npos);

    // Ranks agree with the single-retriever runs, and the score is the RRF of the ranks.
    std::vector<Hit> kw = run(q, SearchMode::Keyword, cfg.candidates);
    std::vector<Hit> vec = run(q, SearchMode::Vector, cfg.candidates);
    for (size_t i = 0; i < hybrid.size(); i++) {
        const Hit& h = hybrid[i];
        ASSERT_TRUE(h.keyword_rank > 0 || h.vector_rank > 0);
        double expect = 0;
        if (h.keyword_rank > 0) {
            ASSERT_LE(h.keyword_rank, static_cast<int>(kw.size()));
            EXPECT_EQ(kw[h.keyword_rank - 1].chunk.id, h.chunk.id);
            EXPECT_EQ(h.keyword_score, kw[h.keyword_rank - 1].score);
            expect += 1.0 / (cfg.rrf_k + h.keyword_rank);
        }
        if (h.vector_rank > 0) {
            ASSERT_LE(h.vector_rank, static_cast<int>(vec.size()));
            EXPECT_EQ(vec[h.vector_rank - 1].chunk.id, h.chunk.id);
            EXPECT_EQ(h.vector_score, vec[h.vector_rank - 1].score);
            expect += 1.0 / (cfg.rrf_k + h.vector_rank);
        }
        EXPECT_DOUBLE_EQ(h.score, expect);
        if (i > 0) {
            EXPECT_GE(hybrid[i - 1].score, h.score);
        }
    }

    // Deterministic.
    std::vector<Hit> again = run(q, SearchMode::Hybrid, 5);
    ASSERT_EQ(again.size(), hybrid.size());
    for (size_t i = 0; i < hybrid.size(); i++) {
        EXPECT_EQ(again[i].chunk.id, hybrid[i].chunk.id);
        EXPECT_EQ(again[i].score, hybrid[i].score);
    }
}

TEST_F(SearchTest, KMayExceedCandidates) {
    cfg.candidates = 2;
    std::vector<Hit> hits = run("ibuprofen", SearchMode::Keyword, 3);
    EXPECT_EQ(hits.size(), 3u);
    hits = run("fever pain tablets", SearchMode::Hybrid, 8);
    EXPECT_EQ(hits.size(), 8u);  // the vector side ranks every chunk
}

TEST_F(SearchTest, Filters) {
    for (SearchMode mode : {SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector}) {
        SCOPED_TRACE(search_mode_name(mode));
        IndexFilter legal;
        legal.collection = "legal";
        std::vector<Hit> hits = run("fever rent tenant ibuprofen", mode, 10, legal);
        ASSERT_FALSE(hits.empty());
        for (const Hit& h : hits) EXPECT_EQ(h.chunk.collection, "legal");

        IndexFilter doc;
        doc.document_id = aspirin;
        hits = run("fever rent tenant ibuprofen aspirin", mode, 10, doc);
        ASSERT_FALSE(hits.empty());
        for (const Hit& h : hits) EXPECT_EQ(h.chunk.document_id, aspirin);

        IndexFilter both;
        both.collection = "medical";
        both.document_id = lease;  // the lease is not medical
        EXPECT_TRUE(run("rent", mode, 10, both).empty());

        IndexFilter none;
        none.collection = "nonexistent";
        EXPECT_TRUE(run("fever", mode, 10, none).empty());
    }
}

TEST_F(SearchTest, SkipsChunksDeletedSinceIndexing) {
    // The indexes still hold the leaflet's chunks; the store no longer does.
    ASSERT_TRUE(store->remove_document(leaflet));
    for (SearchMode mode : {SearchMode::Hybrid, SearchMode::Keyword, SearchMode::Vector}) {
        SCOPED_TRACE(search_mode_name(mode));
        std::vector<Hit> hits = run("ibuprofen fever", mode, 3);
        for (const Hit& h : hits) EXPECT_NE(h.chunk.document_id, leaflet);
        expect_rows(hits);
    }
    // Later candidates fill the places of the deleted ones.
    EXPECT_EQ(run("ibuprofen fever", SearchMode::Vector, 6).size(), 6u);
    EXPECT_EQ(run("ibuprofen fever", SearchMode::Keyword, 3).size(), 1u);  // aspirin only
}

}  // namespace
}  // namespace ragd
