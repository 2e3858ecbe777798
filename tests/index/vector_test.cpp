#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "index/internal.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

constexpr int kDim = 32;

// n random unit vectors.
std::vector<float> random_unit(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> v(size_t(n) * kDim);
    for (int i = 0; i < n; ++i) {
        float* x = v.data() + size_t(i) * kDim;
        float s = 0;
        for (int d = 0; d < kDim; ++d) {
            x[d] = g(rng);
            s += x[d] * x[d];
        }
        for (int d = 0; d < kDim; ++d) x[d] /= std::sqrt(s);
    }
    return v;
}

std::vector<int64_t> iota_ids(int n, int64_t first) {
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ids[size_t(i)] = first + i;
    return ids;
}

std::vector<int64_t> ids_of(const std::vector<VectorHit>& hits) {
    std::vector<int64_t> ids;
    for (const auto& h : hits) ids.push_back(h.chunk_id);
    return ids;
}

class VectorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        xs = random_unit(n, 7);
        ids = iota_ids(n, 100);  // chunk ids 100..
        vi = make();
        vi->add(n, ids.data(), xs.data());
        vi->set_applied_seq(42);
    }
    std::unique_ptr<VectorIndex> make() {
        return std::make_unique<VectorIndex>(path(), "test-emb", kDim, 64);
    }
    std::string path() const { return dir / "vectors.faiss"; }
    const float* x(int i) const { return xs.data() + size_t(i) * kDim; }

    test::TempDir dir;
    int n = 500;
    std::vector<float> xs;
    std::vector<int64_t> ids;
    std::unique_ptr<VectorIndex> vi;
};

TEST_F(VectorTest, FindsItselfWithCosineScore) {
    for (int i : {0, 17, 250, 499}) {
        auto hits = vi->search(x(i), 5, nullptr);
        ASSERT_EQ(hits.size(), 5u);
        EXPECT_EQ(hits[0].chunk_id, ids[size_t(i)]);
        EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);  // inner product, not a distance
        for (size_t j = 1; j < hits.size(); ++j) EXPECT_GE(hits[j - 1].score, hits[j].score);
    }
    EXPECT_EQ(vi->live(), n);
    EXPECT_TRUE(vi->search(x(0), 0, nullptr).empty());
    EXPECT_EQ(vi->search(x(0), 10000, nullptr).size(), size_t(n));
}

TEST_F(VectorTest, AddIsIdempotent) {
    vi->add(n, ids.data(), xs.data());
    EXPECT_EQ(vi->stored(), n);
    // Duplicates within one batch too.
    int64_t dup[2] = {5000, 5000};
    std::vector<float> two = random_unit(2, 9);
    vi->add(2, dup, two.data());
    EXPECT_EQ(vi->stored(), n + 1);
}

TEST_F(VectorTest, RemoveTombstonesAndHidesFromResults) {
    std::vector<int64_t> gone;
    for (int i = 0; i < n; i += 10) gone.push_back(ids[size_t(i)]);  // 50 of 500
    gone.push_back(999999);                                          // absent: ignored
    vi->remove(gone);
    vi->remove(gone);  // twice: no change
    EXPECT_EQ(vi->tombstones(), 50);
    EXPECT_EQ(vi->live(), n - 50);
    EXPECT_FALSE(vi->contains(ids[0]));
    EXPECT_TRUE(vi->contains(ids[1]));
    for (int i = 0; i < n; i += 10) {
        auto hits = vi->search(x(i), 20, nullptr);
        EXPECT_EQ(hits.size(), 20u);
        for (const auto& h : hits) EXPECT_NE((h.chunk_id - 100) % 10, 0) << h.chunk_id;
    }
    // All results even when k exceeds the live count.
    auto all = vi->search(x(3), 10000, nullptr);
    EXPECT_EQ(all.size(), size_t(n - 50));
}

TEST_F(VectorTest, RemovedIdCanComeBack) {
    vi->remove({ids[3]});
    std::vector<float> y = random_unit(1, 99);
    vi->add(1, &ids[3], y.data());
    EXPECT_TRUE(vi->contains(ids[3]));
    EXPECT_EQ(vi->live(), n);
    EXPECT_EQ(vi->tombstones(), 0);
    auto hits = vi->search(y.data(), 1, nullptr);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].chunk_id, ids[3]);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);
}

TEST_F(VectorTest, CompactionDropsTombstonesKeepsVectors) {
    vi->compact_min = 10;
    std::vector<int64_t> gone(ids.begin(), ids.begin() + 200);  // 40% of stored
    vi->remove(gone);
    vi->save();  // compacts first
    EXPECT_EQ(vi->stored(), n - 200);
    EXPECT_EQ(vi->tombstones(), 0);
    EXPECT_EQ(vi->live(), n - 200);
    EXPECT_EQ(vi->applied_seq(), 42);
    for (int i = 200; i < n; i += 37) {
        auto hits = vi->search(x(i), 1, nullptr);
        ASSERT_EQ(hits.size(), 1u);
        EXPECT_EQ(hits[0].chunk_id, ids[size_t(i)]);
        EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);  // exact vector kept, not re-embedded
    }
    auto hits = vi->search(x(0), 10000, nullptr);
    EXPECT_EQ(hits.size(), size_t(n - 200));
}

TEST_F(VectorTest, NoCompactionUnderThreshold) {
    vi->compact_min = 10;
    vi->remove(std::vector<int64_t>(ids.begin(), ids.begin() + 100));  // 20%
    vi->save();
    EXPECT_EQ(vi->stored(), n);
    EXPECT_EQ(vi->tombstones(), 100);
}

TEST_F(VectorTest, RemovingEverything) {
    vi->remove(ids);
    EXPECT_EQ(vi->live(), 0);
    EXPECT_TRUE(vi->search(x(0), 10, nullptr).empty());
    vi->save();
    EXPECT_EQ(vi->stored(), 0);
    auto r = make();
    ASSERT_TRUE(r->load());
    EXPECT_EQ(r->live(), 0);
    EXPECT_TRUE(r->search(x(0), 10, nullptr).empty());
    r->add(n, ids.data(), xs.data());  // removed ids come back after a compaction
    EXPECT_EQ(r->live(), n);
    EXPECT_EQ(r->search(x(9), 1, nullptr)[0].chunk_id, ids[9]);
}

TEST(DotKernel, MatchesReference) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1, 1);
    for (size_t n : {0, 1, 7, 8, 9, 31, 32, 33, 100, 384, 1000}) {
        std::vector<float> a(n), b(n);
        for (size_t i = 0; i < n; ++i) a[i] = u(rng), b[i] = u(rng);
        double ref = 0;
        for (size_t i = 0; i < n; ++i) ref += double(a[i]) * b[i];
        EXPECT_NEAR(dot(a.data(), b.data(), n), ref, 1e-4) << n;
        EXPECT_NEAR(dot_generic(a.data(), b.data(), n), ref, 1e-4) << n;
    }
}

TEST_F(VectorTest, FilteredSearchBruteForce) {
    std::vector<int64_t> allowed = {ids[10], ids[20], ids[30], ids[40], 777777};
    auto hits = vi->search(x(20), 10, &allowed);
    ASSERT_EQ(hits.size(), 4u);  // 777777 is not stored
    EXPECT_EQ(hits[0].chunk_id, ids[20]);
    for (const auto& h : hits) {
        EXPECT_TRUE(std::count(allowed.begin(), allowed.end(), h.chunk_id));
    }
    vi->remove({ids[20]});
    hits = vi->search(x(20), 10, &allowed);
    EXPECT_EQ(hits.size(), 3u);
    for (const auto& h : hits) EXPECT_NE(h.chunk_id, ids[20]);
    std::vector<int64_t> none;
    EXPECT_TRUE(vi->search(x(0), 10, &none).empty());
}

// A large allow-set goes through HNSW with a selector; results must respect it and be
// as good as exact search.
TEST(VectorIndex, FilteredSearchLargeSetMatchesExact) {
    test::TempDir dir;
    const int n = 3000;
    std::vector<float> xs = random_unit(n, 3);
    std::vector<int64_t> ids = iota_ids(n, 1);
    VectorIndex vi(dir / "v", "e", kDim, 64);
    vi.brute_max = 100;
    vi.add(n, ids.data(), xs.data());
    std::vector<int64_t> allowed;
    for (int64_t id : ids) {
        if (id % 3 != 0) allowed.push_back(id);  // 2000 ids: over the brute-force limit
    }
    std::vector<float> qs = random_unit(20, 11);
    int agree = 0, total = 0;
    for (int q = 0; q < 20; ++q) {
        const float* qv = qs.data() + q * kDim;
        auto hits = vi.search(qv, 10, &allowed);
        ASSERT_EQ(hits.size(), 10u);
        for (const auto& h : hits) ASSERT_NE(h.chunk_id % 3, 0);
        // exact top 10 among allowed
        std::vector<std::pair<float, int64_t>> exact;
        for (int64_t id : allowed) {
            const float* v = xs.data() + (id - 1) * kDim;
            float s = 0;
            for (int d = 0; d < kDim; ++d) s += qv[d] * v[d];
            exact.push_back({-s, id});
        }
        std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
        for (const auto& h : hits) {
            for (int j = 0; j < 10; ++j) agree += exact[size_t(j)].second == h.chunk_id;
        }
        total += 10;
    }
    EXPECT_GE(agree, total * 8 / 10);  // recall@10 of HNSW on random data
}

TEST_F(VectorTest, SaveAndReload) {
    vi->remove({ids[1], ids[2]});
    vi->save();
    auto r = make();
    ASSERT_TRUE(r->load());
    EXPECT_EQ(r->applied_seq(), 42);
    EXPECT_EQ(r->stored(), n);
    EXPECT_EQ(r->tombstones(), 2);
    EXPECT_EQ(r->live(), n - 2);
    EXPECT_FALSE(r->contains(ids[1]));
    EXPECT_TRUE(r->contains(ids[3]));
    for (int i : {0, 3, 400}) {
        EXPECT_EQ(ids_of(r->search(x(i), 10, nullptr)), ids_of(vi->search(x(i), 10, nullptr)));
    }
    EXPECT_FALSE(std::filesystem::exists(path() + ".tmp"));
}

TEST_F(VectorTest, ReloadRejectsOtherEmbedder) {
    vi->save();
    VectorIndex other_name(path(), "other-emb", kDim, 64);
    EXPECT_FALSE(other_name.load());
    EXPECT_EQ(other_name.applied_seq(), std::nullopt);
    EXPECT_EQ(other_name.live(), 0);
    VectorIndex other_dim(path(), "test-emb", 16, 64);
    EXPECT_FALSE(other_dim.load());
}

TEST_F(VectorTest, MissingFile) {
    auto r = make();
    EXPECT_FALSE(r->load());
    EXPECT_EQ(r->applied_seq(), std::nullopt);
    EXPECT_EQ(r->live(), 0);
    EXPECT_TRUE(r->search(x(0), 5, nullptr).empty());
}

TEST_F(VectorTest, SaveRequiresAppliedSeq) {
    auto r = make();
    EXPECT_THROW(r->save(), Error);
}

// Every truncation and a sample of byte flips must read as "missing", never crash.
TEST(VectorIndex, CorruptFilesAreRejected) {
    test::TempDir dir;
    std::string path = dir / "vectors.faiss";
    {
        std::vector<float> xs = random_unit(40, 5);
        std::vector<int64_t> ids = iota_ids(40, 1);
        VectorIndex vi(path, "emb", kDim, 16);
        vi.add(40, ids.data(), xs.data());
        vi.remove({3, 4});
        vi.set_applied_seq(7);
        vi.save();
    }
    const std::string good = test::read_file(path);
    {
        VectorIndex vi(path, "emb", kDim, 16);
        ASSERT_TRUE(vi.load());
        EXPECT_EQ(vi.live(), 38);
    }
    auto check_bad = [&](const std::string& bytes, const std::string& what) {
        test::write_file(path, bytes);
        VectorIndex vi(path, "emb", kDim, 16);
        EXPECT_FALSE(vi.load()) << what;
        EXPECT_EQ(vi.applied_seq(), std::nullopt) << what;
        EXPECT_EQ(vi.live(), 0) << what;
    };
    size_t step = std::max<size_t>(1, good.size() / 300);
    for (size_t len = 0; len < good.size(); len += (len < 128 ? 1 : step)) {
        check_bad(good.substr(0, len), "truncated at " + std::to_string(len));
    }
    std::mt19937 rng(1);
    for (int i = 0; i < 200; ++i) {
        std::string b = good;
        size_t at = rng() % b.size();
        b[at] = char(b[at] ^ (1 + rng() % 255));
        check_bad(b, "flipped byte " + std::to_string(at));
    }
    std::string garbage(good.size(), '\0');
    for (auto& c : garbage) c = char(rng());
    check_bad(garbage, "garbage");
    check_bad("RAGDVEC1" + garbage, "garbage after magic");
    check_bad(good + "extra", "trailing bytes");
    // A directory where the file should be.
    std::filesystem::remove(path);
    std::filesystem::create_directory(path);
    VectorIndex vi(path, "emb", kDim, 16);
    EXPECT_FALSE(vi.load());
}

// Damage inside the FAISS bytes of a file whose header and checksum are made valid again
// (as a buggy writer would produce): still rejected, never a crash.
TEST(VectorIndex, InconsistentFaissPayloadIsRejected) {
    test::TempDir dir;
    std::string path = dir / "vectors.faiss";
    {
        std::vector<float> xs = random_unit(60, 5);
        std::vector<int64_t> ids = iota_ids(60, 1);
        VectorIndex vi(path, "emb", kDim, 16);
        vi.add(60, ids.data(), xs.data());
        vi.set_applied_seq(1);
        vi.save();
    }
    const std::string good = test::read_file(path);
    // Header: magic, applied_seq, name_len, "emb", dim, n_tombstones (0), faiss_len.
    const size_t len_at = 8 + 8 + 4 + 3 + 4 + 8;
    const std::string head = good.substr(0, len_at);
    const std::string payload = good.substr(len_at + 8, good.size() - len_at - 16);
    auto wrap = [&](const std::string& p) {
        std::string f = head;
        uint64_t n = p.size();
        f.append(reinterpret_cast<const char*>(&n), 8);
        f += p;
        uint64_t sum = vector_file_checksum(reinterpret_cast<const uint8_t*>(f.data()), f.size());
        f.append(reinterpret_cast<const char*>(&sum), 8);
        return f;
    };
    ASSERT_EQ(wrap(payload), good);
    std::vector<float> q = random_unit(1, 77);
    auto try_load = [&](const std::string& bytes) {
        test::write_file(path, bytes);
        VectorIndex vi(path, "emb", kDim, 16);
        if (vi.load()) {
            // Accepted: then it must be usable.
            vi.search(q.data(), 5, nullptr);
            std::vector<int64_t> allowed = {1, 2, 3};
            vi.search(q.data(), 5, &allowed);
            return true;
        }
        EXPECT_EQ(vi.live(), 0);
        return false;
    };
    size_t step = std::max<size_t>(1, payload.size() / 200);
    for (size_t len = 0; len < payload.size(); len += step) {
        EXPECT_FALSE(try_load(wrap(payload.substr(0, len)))) << "truncated at " << len;
    }
    std::mt19937 rng(3);
    for (int i = 0; i < 400; ++i) {
        std::string p = payload;
        size_t at = rng() % p.size();
        p[at] = char(p[at] ^ (1 + rng() % 255));
        try_load(wrap(p));  // a flip in vector data can be harmless; it must not crash
    }
}

}  // namespace
}  // namespace ragd
