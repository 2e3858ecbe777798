// Tiled attention (generate/attention.h): every kernel this CPU runs against a
// double-precision two-pass softmax, on float and 8-bit caches, prefill- and decode-shaped
// rows, head sizes the vector code takes and one it does not, and unwritten cache
// positions filled with NaN to show that what a row must not see is never summed.
#include "generate/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace ragd::attention {
namespace {

using quant::Isa;

// One KV head's cache of n_keys written positions in the layout of attention.h. Positions
// past n_keys up to the end of the last block hold NaN (keys, values and scales).
struct Cache {
    int hd = 0;
    bool q8 = false;
    std::vector<float> k, v, k_scale, v_scale;
    std::vector<int8_t> k8, v8;
    std::vector<std::vector<double>> key, value;  // what the cache holds, dequantized

    Cache(int hd_, int n_keys, bool q8_, std::mt19937& rng) : hd(hd_), q8(q8_) {
        const int alloc = (n_keys + kBlock - 1) / kBlock * kBlock;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::normal_distribution<float> normal(0.0f, 1.0f);
        if (q8) {
            k8.assign(size_t(alloc) * hd, int8_t(-128));
            v8.assign(size_t(alloc) * hd, int8_t(-128));
            k_scale.assign(size_t(alloc), nan);
            v_scale.assign(size_t(alloc), nan);
        } else {
            k.assign(size_t(alloc) * hd, nan);
            v.assign(size_t(alloc) * hd, nan);
        }
        std::uniform_int_distribution<int> byte(-127, 127);
        for (int j = 0; j < n_keys; ++j) {
            std::vector<double> kj(static_cast<size_t>(hd)), vj(static_cast<size_t>(hd));
            const float ks = 0.01f + 0.02f * std::abs(normal(rng)), vs = 0.02f;
            for (int d = 0; d < hd; ++d) {
                const size_t at = key_index(hd, j, d), vat = size_t(j) * hd + size_t(d);
                if (q8) {
                    k8[at] = int8_t(byte(rng));
                    v8[vat] = int8_t(byte(rng));
                    kj[size_t(d)] = double(k8[at]) * ks;
                    vj[size_t(d)] = double(v8[vat]) * vs;
                } else {
                    k[at] = normal(rng);
                    v[vat] = normal(rng);
                    kj[size_t(d)] = k[at];
                    vj[size_t(d)] = v[vat];
                }
            }
            if (q8) k_scale[size_t(j)] = ks, v_scale[size_t(j)] = vs;
            key.push_back(kj);
            value.push_back(vj);
        }
    }

    KvHead head() {
        KvHead h;
        h.hd = hd;
        if (q8) {
            h.k8 = k8.data(), h.v8 = v8.data();
            h.k_scale = k_scale.data(), h.v_scale = v_scale.data();
        } else {
            h.k = k.data(), h.v = v.data();
        }
        return h;
    }
};

std::vector<double> reference(const Cache& c, const float* q, int n_pos, double scale) {
    std::vector<double> w(static_cast<size_t>(n_pos)), out(static_cast<size_t>(c.hd), 0.0);
    double mx = -1e300, sum = 0;
    for (int j = 0; j < n_pos; ++j) {
        double s = 0;
        for (int d = 0; d < c.hd; ++d) s += double(q[d]) * c.key[size_t(j)][size_t(d)];
        w[size_t(j)] = s * scale;
        mx = std::max(mx, w[size_t(j)]);
    }
    for (double& x : w) sum += x = std::exp(x - mx);
    for (int j = 0; j < n_pos; ++j)
        for (int d = 0; d < c.hd; ++d)
            out[size_t(d)] += w[size_t(j)] / sum * c.value[size_t(j)][size_t(d)];
    return out;
}

struct Shape {
    int hd;
    int p0;        // positions cached before the batch
    int n_tokens;  // tokens in the batch (causal: token t sees p0 + t + 1 positions)
    int group;     // query heads per KV head
    float q_gain;  // larger: sharper softmax
};

// Runs `fn` on the rows of shape s and returns the worst absolute error against the
// reference, relative to the largest value in the cache.
double worst_error(AttendFn fn, const Shape& s, bool q8, uint32_t seed) {
    std::mt19937 rng(seed);
    Cache cache(s.hd, s.p0 + s.n_tokens, q8, rng);
    const int n = s.n_tokens * s.group;
    std::normal_distribution<float> normal(0.0f, s.q_gain);
    std::vector<float> q(size_t(n) * s.hd), out(size_t(n) * s.hd, -7.0f);
    for (float& x : q) x = normal(rng);
    std::vector<const float*> qp;
    std::vector<float*> op;
    std::vector<int> n_pos;
    for (int r = 0; r < n; ++r) {
        qp.push_back(&q[size_t(r) * s.hd]);
        op.push_back(&out[size_t(r) * s.hd]);
        n_pos.push_back(s.p0 + r / s.group + 1);
    }
    Rows rows;
    rows.n = n, rows.q = qp.data(), rows.out = op.data(), rows.n_pos = n_pos.data();
    Workspace ws;
    const double scale = 1.0 / std::sqrt(double(s.hd));
    fn(cache.head(), rows, float(scale), ws);
    double vmax = 0;
    for (const auto& v : cache.value)
        for (double x : v) vmax = std::max(vmax, std::fabs(x));
    double worst = 0;
    for (int r = 0; r < n; ++r) {
        std::vector<double> e = reference(cache, qp[size_t(r)], n_pos[size_t(r)], scale);
        for (int d = 0; d < s.hd; ++d) {
            const double err = std::fabs(double(op[size_t(r)][d]) - e[size_t(d)]) / vmax;
            worst = std::isnan(err) ? 1e9 : std::max(worst, err);
        }
    }
    return worst;
}

const Shape kShapes[] = {
    {128, 0, 40, 4, 1.0f},    // a first prefill batch: every row inside the first blocks
    {128, 100, 70, 4, 1.0f},  // a later batch crossing block boundaries
    {128, 0, 1, 4, 1.0f},     // decode at position 0
    {128, 63, 1, 4, 1.0f},    // decode: the last position of a block
    {128, 64, 1, 4, 1.0f},    // decode: the first of a new block
    {128, 700, 3, 4, 8.0f},   // long context, sharp softmax
    {64, 30, 50, 1, 1.0f},    // no grouping, small heads
    {80, 5, 9, 8, 1.0f},      // head size a multiple of 16 but not of 64
    {32, 200, 1, 2, 30.0f},   // nearly one-hot weights
    {96, 0, 3, 3, 1.0f},      // head size a multiple of 8 and 16 not 64; odd row count
    {6, 10, 5, 2, 1.0f},      // head size no vector width divides: the exact fallback
};

// Tolerance: 2e-6 of the largest value for unit-scale scores. Scores are summed in float,
// so their absolute error grows with their size (about 1e-7 of it), and a sharper softmax
// (q_gain > 1) gets a proportionally wider bound.
TEST(Attention, EveryKernelMatchesDoublePrecisionSoftmax) {
    int tested = 0;
    for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512}) {
        if (isa > quant::detected_isa()) continue;
        AttendFn fn = attend_kernel(isa);
        ASSERT_NE(fn, nullptr);
        for (bool q8 : {false, true})
            for (const Shape& s : kShapes) {
                const double err = worst_error(fn, s, q8, 7u + uint32_t(s.hd + s.p0));
                EXPECT_LE(err, 2e-6 * std::max(1.0f, s.q_gain))
                    << quant::isa_name(isa) << (q8 ? " q8" : " f32") << " hd " << s.hd << " p0 "
                    << s.p0 << " tokens " << s.n_tokens << " group " << s.group;
                ++tested;
            }
    }
    EXPECT_GE(tested, 22);
}

// The dispatcher picks this CPU's best kernel; its results equal that kernel's.
TEST(Attention, AttendUsesTheBestKernel) {
    const Shape s{128, 90, 20, 4, 1.0f};
    const double via_attend = worst_error([](const KvHead& kv, const Rows& rows, float scale,
                                             Workspace& ws) { attend(kv, rows, scale, ws); },
                                          s, false, 3);
    const double via_kernel = worst_error(attend_kernel(quant::detected_isa()), s, false, 3);
    EXPECT_EQ(via_attend, via_kernel);
    EXPECT_LE(via_attend, 2e-6);
}

// store() writes what attend() reads: keys transposed per block, values as rows, a new
// key block zeroed (its scales too, for q8), and nothing past the block of the last
// position touched.
TEST(Attention, StoreWritesTheCacheLayout) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int hd : {6, 16})
        for (bool q8 : {false, true}) {
            const int n_written = 130, alloc = 4 * kBlock;  // positions 130..191 in block 2
            std::vector<float> k(size_t(alloc) * hd, nan), v(k), ks(size_t(alloc), nan), vs(ks);
            std::vector<int8_t> k8(size_t(alloc) * hd, int8_t(-128)), v8(k8);
            KvHead kv;
            kv.hd = hd;
            if (q8)
                kv.k8 = k8.data(), kv.v8 = v8.data(), kv.k_scale = ks.data(),
                kv.v_scale = vs.data();
            else
                kv.k = k.data(), kv.v = v.data();
            std::mt19937 rng(static_cast<uint32_t>(hd));
            std::normal_distribution<float> normal(0.0f, 1.0f);
            std::vector<std::vector<float>> keys, values;
            for (int j = 0; j < n_written; ++j) {
                keys.emplace_back(size_t(hd)), values.emplace_back(size_t(hd));
                for (int d = 0; d < hd; ++d)
                    keys.back()[size_t(d)] = normal(rng), values.back()[size_t(d)] = normal(rng);
                store(kv, j, keys.back().data(), values.back().data());
            }
            const std::string what = std::string(q8 ? "q8" : "f32") + " hd " + std::to_string(hd);
            for (int j = 0; j < n_written; ++j) {
                const std::vector<float>& kj = keys[size_t(j)];
                const std::vector<float>& vj = values[size_t(j)];
                if (!q8) {
                    for (int d = 0; d < hd; ++d) {
                        ASSERT_EQ(k[key_index(hd, j, d)], kj[size_t(d)]) << what << " j " << j;
                        ASSERT_EQ(v[size_t(j * hd + d)], vj[size_t(d)]) << what << " j " << j;
                    }
                    continue;
                }
                float kmax = 0, vmax = 0;
                for (int d = 0; d < hd; ++d)
                    kmax = std::max(kmax, std::fabs(kj[size_t(d)])),
                    vmax = std::max(vmax, std::fabs(vj[size_t(d)]));
                ASSERT_FLOAT_EQ(ks[size_t(j)], kmax / 127) << what << " j " << j;
                ASSERT_FLOAT_EQ(vs[size_t(j)], vmax / 127) << what << " j " << j;
                for (int d = 0; d < hd; ++d) {
                    const float kq = k8[key_index(hd, j, d)] * ks[size_t(j)];
                    const float vq = v8[size_t(j * hd + d)] * vs[size_t(j)];
                    ASSERT_LE(std::fabs(kq - kj[size_t(d)]), ks[size_t(j)] * 0.5001f) << what;
                    ASSERT_LE(std::fabs(vq - vj[size_t(d)]), vs[size_t(j)] * 0.5001f) << what;
                }
            }
            // The rest of block 2 is zeroed; block 3 is untouched.
            for (int j = n_written; j < alloc; ++j) {
                const bool zeroed = j < 3 * kBlock;
                for (int d = 0; d < hd; ++d) {
                    const size_t at = key_index(hd, j, d);
                    if (q8)
                        EXPECT_EQ(k8[at], zeroed ? 0 : -128) << what << " j " << j;
                    else if (zeroed)
                        EXPECT_EQ(k[at], 0.0f) << what << " j " << j;
                    else
                        EXPECT_TRUE(std::isnan(k[at])) << what << " j " << j;
                }
                if (q8) {
                    EXPECT_EQ(ks[size_t(j)] == 0.0f, zeroed) << what << " j " << j;
                    EXPECT_EQ(vs[size_t(j)] == 0.0f, zeroed) << what << " j " << j;
                }
            }
        }
}

}  // namespace
}  // namespace ragd::attention
