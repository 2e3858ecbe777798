#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "index/index.h"

namespace ragd {
namespace {

std::vector<float> embed1(const Embedder& e, const std::string& text) {
    std::vector<float> v(size_t(e.dim()));
    e.embed({text}, v.data());
    return v;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
    float s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

TEST(Embedder, NameAndDim) {
    auto e = make_hashed_embedder();
    EXPECT_EQ(e->name(), "hashed-ngram-v2");
    EXPECT_EQ(e->dim(), 384);
    EXPECT_EQ(make_hashed_embedder(64)->dim(), 64);
    EXPECT_THROW(make_hashed_embedder(0), Error);
}

TEST(Embedder, DeterministicAcrossCallsAndBatches) {
    auto a = make_hashed_embedder();
    auto b = make_hashed_embedder();
    std::vector<std::string> texts = {"The contract terminates on 31 December.", "",
                                      "Tenant shall pay rent monthly.", "café naïve 東京"};
    std::vector<float> batch(texts.size() * 384);
    a->embed(texts, batch.data());
    for (size_t i = 0; i < texts.size(); ++i) {
        std::vector<float> one = embed1(*b, texts[i]);
        EXPECT_EQ(0, std::memcmp(one.data(), batch.data() + i * 384, 384 * sizeof(float))) << i;
    }
}

// Pins the features to the spec: the expected values come from an independent Python
// implementation of it, tests/index/embedder_golden.py (run it with the same text and dim).
// A change here invalidates every stored vector, so it must come with a new name().
TEST(Embedder, GoldenAgainstIndependentImplementation) {
    auto e = make_hashed_embedder(16);
    std::vector<float> v = embed1(*e, "Hello, world");
    const float hello[16] = {-0.256241842f,  -0.0640604606f, -0.0640604606f, -0.256241842f,
                             -0.691852975f,  -0.0640604606f, 0.0640604606f,  -0.256241842f,
                             -0.0128120921f, -0.320302303f,  -0.0640604606f, -0.256241842f,
                             0.320302303f,   0.128120921f,   0.0f,           -0.128120921f};
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(v[size_t(i)], hello[i], 1e-5) << i;
    // Stop words dropped, bigrams across them, term frequency 2.
    v = embed1(*e, "The patient and the PATIENT dose");
    const float patient[16] = {-0.0922171208f, 0.222327573f,  -0.0134309731f, -0.0484470387f,
                               -0.074109191f,  -0.074109191f, -0.0910173269f, -0.283005791f,
                               -0.148218382f,  -0.291759807f, -0.393330842f,  -0.3133449f,
                               0.166326312f,   0.263820286f,  -0.55030324f,   0.283005791f};
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(v[size_t(i)], patient[i], 1e-5) << i;
}

TEST(Embedder, StemsAndStopWords) {
    auto e = make_hashed_embedder();
    // Stop words alone embed to nothing; around content words they change nothing.
    for (float x : embed1(*e, "the of and which")) ASSERT_EQ(x, 0.0f);
    EXPECT_EQ(embed1(*e, "the termination of the agreement"), embed1(*e, "termination agreement"));
    // Different surface forms of one stem share their word features.
    float same_stem = dot(embed1(*e, "governs"), embed1(*e, "governing"));
    float other = dot(embed1(*e, "governs"), embed1(*e, "invoices"));
    EXPECT_GT(same_stem, other + 0.2f);
}

TEST(Embedder, Normalized) {
    auto e = make_hashed_embedder();
    for (const char* t : {"x", "hello world", "The quick brown fox jumps over the lazy dog.",
                          "naïve café — ünïcödé", "x1 y2 z3 123456789"}) {
        std::vector<float> v = embed1(*e, t);
        EXPECT_NEAR(dot(v, v), 1.0f, 1e-4) << t;
    }
}

TEST(Embedder, NoWordsIsZeroVector) {
    auto e = make_hashed_embedder();
    for (const char* t : {"", "   ", "!!! --- ???", "\n\f\t"}) {
        std::vector<float> v = embed1(*e, t);
        for (float x : v) ASSERT_EQ(x, 0.0f) << t;
    }
}

TEST(Embedder, CaseFoldsAsciiOnly) {
    auto e = make_hashed_embedder();
    EXPECT_EQ(embed1(*e, "Hello WORLD"), embed1(*e, "hello world"));
    EXPECT_EQ(embed1(*e, "hello, world!"), embed1(*e, "hello world"));
    EXPECT_NE(embed1(*e, "café"), embed1(*e, "cafe"));
}

TEST(Embedder, SimilarTextsAreCloser) {
    auto e = make_hashed_embedder();
    auto q = embed1(*e, "termination of the lease agreement");
    auto near = embed1(*e, "The lease agreement may be terminated with notice.");
    auto far = embed1(*e, "Photosynthesis converts sunlight into chemical energy in plants.");
    EXPECT_GT(dot(q, near), dot(q, far) + 0.1f);
    // Character n-grams make morphology count: "terminate" is closer to "termination"
    // than to an unrelated word.
    auto t1 = embed1(*e, "terminate");
    EXPECT_GT(dot(t1, embed1(*e, "termination")), dot(t1, embed1(*e, "banana")) + 0.2f);
    // Word order matters a little through bigrams, but bag of words dominates.
    auto ab = embed1(*e, "dog bites man");
    auto ba = embed1(*e, "man bites dog");
    EXPECT_GT(dot(ab, ba), 0.7f);
    EXPECT_LT(dot(ab, ba), 0.999f);
}

TEST(Embedder, LongAndOddInputs) {
    auto e = make_hashed_embedder();
    std::string long_word(100000, 'a');
    std::string bytes;
    for (int i = 0; i < 4096; ++i) bytes.push_back(char(i & 0xff));
    for (const std::string& t : {long_word, bytes, std::string("\xff\xfe\x80", 3)}) {
        std::vector<float> v = embed1(*e, t);
        float n = dot(v, v);
        EXPECT_TRUE(std::fabs(n - 1.0f) < 1e-4 || n == 0.0f);
    }
}

// Not a benchmark (no assertion on time); prints the throughput for the record.
TEST(Embedder, ThroughputReport) {
    auto e = make_hashed_embedder();
    const char* words[] = {"lease",       "tenant", "shall",     "pay",      "the",       "rent",
                           "notice",      "period", "months",    "written",  "agreement", "party",
                           "termination", "clause", "liability", "insurance"};
    std::vector<std::string> texts(500);
    uint32_t r = 1;
    for (auto& t : texts) {
        for (int i = 0; i < 200; ++i) {
            r = r * 1103515245u + 12345u;
            t += words[(r >> 16) % 16];
            t += ' ';
        }
    }
    std::vector<float> out(texts.size() * 384);
    auto t0 = std::chrono::steady_clock::now();
    e->embed(texts, out.data());
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("hashed embedder: %.0f chunks/s of 200 words\n", double(texts.size()) / s);
}

}  // namespace
}  // namespace ragd
