// The engine's matrix products and the weight read pass (generate/ops.h): every output of
// a matmul, alone or grouped with others of the same input, is the kernel's dot product
// of its row with the converted activations, whatever the thread split; read_weights
// reads every byte (its result is their sum); swiglu matches silu(g) * u computed in double
// at every instruction-set level.
#include "generate/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "generate/quant.h"

namespace ragd {

namespace detail {  // generate/ops.cpp: at one instruction-set level
uint64_t sum_bytes(const uint8_t* p, size_t n, quant::Isa isa);
void swiglu(float* gate, const float* up, size_t n, quant::Isa isa);
}  // namespace detail

namespace {

// A rows x cols matrix of type t, quantized from N(0, 1) floats, owning its bytes.
struct Matrix {
    gguf::Tensor t;
    std::vector<uint8_t> bytes;
};

Matrix random_matrix(gguf::Type type, int64_t cols, int64_t rows, uint32_t seed) {
    Matrix m;
    const size_t rb = gguf::row_bytes(type, cols);
    m.bytes.resize(rb * size_t(rows));
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = nd(rng);
        quant::quantize_row(type, row.data(), m.bytes.data() + size_t(r) * rb, cols);
    }
    m.t.type = type;
    m.t.n_dims = 2;
    m.t.ne[0] = cols, m.t.ne[1] = rows;
    m.t.data = m.bytes.data();
    m.t.nbytes = m.bytes.size();
    return m;
}

// What out[t * rows + r] must be: the dispatched kernel on row r and token t's activations,
// converted here independently of ops.cpp.
std::vector<float> expected(const Matrix& m, const std::vector<float>& x, int n_tokens) {
    const int64_t cols = m.t.ne[0], rows = m.t.ne[1];
    const gguf::Type dt = quant::vec_dot_type(m.t.type);
    const size_t xrb = gguf::row_bytes(dt, cols), wrb = gguf::row_bytes(m.t.type, cols);
    std::vector<uint8_t> xq(xrb * size_t(n_tokens));
    for (int t = 0; t < n_tokens; ++t)
        quant::quantize_row(dt, &x[size_t(t * cols)], xq.data() + size_t(t) * xrb, cols);
    std::vector<float> out(size_t(rows) * size_t(n_tokens));
    for (int t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < rows; ++r)
            out[size_t(t * rows + r)] = quant::vec_dot(m.t.type, cols, m.t.data + size_t(r) * wrb,
                                                       xq.data() + size_t(t) * xrb);
    return out;
}

std::vector<float> random_x(int64_t cols, int n_tokens, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(cols) * size_t(n_tokens));
    for (float& v : x) v = nd(rng);
    return x;
}

TEST(OpsMatmul, DecodeProductsAreTheKernelsDots) {
    // Row counts that are not multiples of the 16-row grain, so chunks straddle matrices;
    // five products, more than one decode job takes (ops.cpp kMaxProducts).
    const int64_t cols = 512;
    const Matrix a = random_matrix(gguf::Type::Q4_K, cols, 200, 1);
    const Matrix b = random_matrix(gguf::Type::Q6_K, cols, 37, 2);
    const Matrix c = random_matrix(gguf::Type::Q8_0, cols, 91, 3);
    const Matrix d = random_matrix(gguf::Type::F16, cols, 16, 4);
    const Matrix e = random_matrix(gguf::Type::Q8_0, cols, 5, 5);
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        for (int n_tokens : {1, 3}) {
            const std::vector<float> x = random_x(cols, n_tokens, uint32_t(10 + n_tokens));
            std::vector<uint8_t> xq;
            std::vector<std::vector<float>> outs;
            for (const Matrix* m : {&a, &b, &c, &d, &e})
                outs.emplace_back(size_t(m->t.ne[1]) * size_t(n_tokens), -1.0f);
            const MatmulOut group[] = {{&a.t, outs[0].data()},
                                       {&b.t, outs[1].data()},
                                       {&c.t, outs[2].data()},
                                       {&d.t, outs[3].data()},
                                       {&e.t, outs[4].data()}};
            matmul(pool, group, 5, x.data(), n_tokens, xq);
            int i = 0;
            for (const Matrix* m : {&a, &b, &c, &d, &e}) {
                EXPECT_EQ(outs[size_t(i)], expected(*m, x, n_tokens))
                    << "matrix " << i << ", " << threads << " threads, " << n_tokens << " tokens";
                // alone, through the one-matrix overload
                std::vector<float> alone(outs[size_t(i)].size(), -1.0f);
                matmul(pool, m->t, x.data(), n_tokens, xq, alone.data());
                EXPECT_EQ(alone, outs[size_t(i)]) << "matrix " << i;
                ++i;
            }
        }
    }
}

TEST(OpsMatmul, PrefillGroupMatchesSeparateProducts) {
    // 16 tokens take the blocked GEMM where the type has one (K-quants, Q8_0) and the
    // vec_dot loop otherwise (F16): a group must give what each product gives alone.
    const int64_t cols = 256;
    const int n_tokens = 16;
    const Matrix a = random_matrix(gguf::Type::Q4_K, cols, 64, 5);
    const Matrix b = random_matrix(gguf::Type::F16, cols, 40, 6);
    const std::vector<float> x = random_x(cols, n_tokens, 7);
    ThreadPool pool(2);
    std::vector<uint8_t> xq;
    std::vector<float> ga(size_t(64 * n_tokens)), gb(size_t(40 * n_tokens));
    const MatmulOut group[] = {{&a.t, ga.data()}, {&b.t, gb.data()}};
    matmul(pool, group, 2, x.data(), n_tokens, xq);
    std::vector<float> sa(ga.size()), sb(gb.size());
    matmul(pool, a.t, x.data(), n_tokens, xq, sa.data());
    matmul(pool, b.t, x.data(), n_tokens, xq, sb.data());
    EXPECT_EQ(ga, sa);
    EXPECT_EQ(gb, sb);
    EXPECT_EQ(gb, expected(b, x, n_tokens));  // the F16 loop is the kernel's dots
}

TEST(OpsReadWeights, ReadsEveryByte) {
    // Sizes around the 256- and 128-byte steps of the SIMD loops and their tails.
    std::vector<Matrix> ms;
    ms.push_back(random_matrix(gguf::Type::Q8_0, 32, 1, 8));     // 34 bytes
    ms.push_back(random_matrix(gguf::Type::Q8_0, 96, 17, 9));    // 102-byte rows
    ms.push_back(random_matrix(gguf::Type::Q4_K, 256, 33, 10));  // 144-byte rows
    ms.push_back(random_matrix(gguf::Type::F32, 40, 300, 11));
    uint64_t want = 0;
    std::vector<const gguf::Tensor*> ws;
    for (const Matrix& m : ms) {
        want = std::accumulate(m.bytes.begin(), m.bytes.end(), want);
        ws.push_back(&m.t);
    }
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        EXPECT_EQ(read_weights(pool, ws.data(), int(ws.size())), want) << threads << " threads";
    }
}

TEST(OpsReadWeights, EveryLevelSumsTheBytes) {
    std::mt19937 rng(12);
    std::vector<uint8_t> bytes(4096 + 300);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    for (int isa = 0; isa <= int(quant::detected_isa()); ++isa)
        for (size_t start : {0, 1, 63})
            for (size_t n : {0, 1, 63, 64, 127, 128, 129, 255, 256, 257, 1000, 4096}) {
                const uint64_t want = std::accumulate(bytes.begin() + long(start),
                                                      bytes.begin() + long(start + n), uint64_t(0));
                EXPECT_EQ(detail::sum_bytes(bytes.data() + start, n, quant::Isa(isa)), want)
                    << quant::isa_name(quant::Isa(isa)) << " start " << start << " n " << n;
            }
}

TEST(OpsSwiglu, EveryLevelIsSiluTimesUpToARelativeMillionth) {
    // Gates over the whole useful range and past the exponential's clamp (|x log2 e| >
    // 126), zero, and lengths around the 16- and 8-lane steps and their tails.
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> wide(-40.0f, 40.0f), narrow(-4.0f, 4.0f);
    std::vector<float> g0, up;
    for (int i = 0; i < 1000; ++i) {
        g0.push_back(i % 2 ? wide(rng) : narrow(rng));
        up.push_back(narrow(rng));
    }
    for (float extreme : {0.0f, -0.0f, 87.0f, -87.0f, 90.0f, -90.0f, 200.0f, -200.0f, 1e-30f}) {
        g0.push_back(extreme);
        up.push_back(1.5f);
    }
    for (int isa = 0; isa <= int(quant::detected_isa()); ++isa)
        for (size_t n :
             {size_t(0), size_t(1), size_t(7), size_t(8), size_t(15), size_t(17), g0.size()}) {
            std::vector<float> g(g0.begin(), g0.begin() + long(n));
            detail::swiglu(g.data(), up.data(), n, quant::Isa(isa));
            for (size_t i = 0; i < n; ++i) {
                const double x = g0[i];
                const double want = x / (1 + std::exp(-x)) * up[i];
                EXPECT_NEAR(g[i], want, 1e-6 * std::fabs(want) + 1e-30)
                    << quant::isa_name(quant::Isa(isa)) << " n " << n << " gate " << x;
            }
        }
}

}  // namespace
}  // namespace ragd
