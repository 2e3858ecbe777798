#include "generate/ops.h"

#include <algorithm>
#include <cmath>

#include "generate/quant.h"

namespace ragd {

namespace {

// From this many tokens on, the blocked GEMM beats one vec_dot per row and token: its
// lanes hold 16 tokens, so with nt tokens it runs at about nt/16 of its 16-token rate
// (kernels_bench: ~200 GOP/s for Q4_K at 16 tokens against ~120 for the vec_dot loop).
constexpr int kGemmMinTokens = 12;

// Prefill: activations quantized and packed once (in parallel by token groups), then
// blocks of rows split across threads, each thread unpacking its rows into its own
// scratch.
void matmul_gemm(ThreadPool& pool, const quant::Gemm& gm, const gguf::Tensor& w, const float* x,
                 int n_tokens, std::vector<uint8_t>& xq, float* out) {
    const int64_t cols = w.ne[0], rows = w.ne[1];
    const gguf::Type dt = quant::vec_dot_type(w.type);
    const size_t xrb = gguf::row_bytes(dt, cols);
    const int64_t pg = gm.pack_group, ng = (n_tokens + pg - 1) / pg;
    const size_t gbytes = gm.pack_bytes(cols, pg);
    const size_t qbytes = (xrb * size_t(n_tokens) + 63) / 64 * 64;
    if (xq.size() < qbytes + gbytes * size_t(ng)) xq.resize(qbytes + gbytes * size_t(ng));
    uint8_t* xs = xq.data();
    uint8_t* packed = xq.data() + qbytes;
    pool.parallel_for(ng, 1, [&](int64_t b, int64_t e) {
        for (int64_t g = b; g < e; ++g) {
            const int64_t t0 = g * pg, nt = std::min<int64_t>(pg, n_tokens - t0);
            for (int64_t t = t0; t < t0 + nt; ++t)
                quant::quantize_row(dt, x + t * cols, xs + size_t(t) * xrb, cols);
            gm.pack(cols, xs + size_t(t0) * xrb, xrb, nt, packed + size_t(g) * gbytes);
        }
    });
    const size_t wrb = gguf::row_bytes(w.type, cols);
    pool.parallel_for(rows, 64, [&](int64_t b, int64_t e) {
        thread_local std::vector<uint8_t> scratch;
        const size_t need = gm.scratch_bytes(cols);
        if (scratch.size() < need) scratch.resize(need);
        gm.run(cols, w.data + size_t(b) * wrb, wrb, e - b, packed, n_tokens, out + b, size_t(rows),
               scratch.data());
    });
}

}  // namespace

// out[t * rows + r] = W[r] · x[t] for t < n_tokens: activations are converted once to
// the weights' dot-product format, then rows are split across threads; each row is read
// once for all tokens of the batch (and unpacked once, with the blocked GEMM).
void matmul(ThreadPool& pool, const gguf::Tensor& w, const float* x, int n_tokens,
            std::vector<uint8_t>& xq, float* out) {
    if (n_tokens >= kGemmMinTokens) {
        if (const quant::Gemm* gm = quant::gemm_fn(w.type))
            return matmul_gemm(pool, *gm, w, x, n_tokens, xq, out);
    }
    const int64_t cols = w.ne[0], rows = w.ne[1];
    const gguf::Type dt = quant::vec_dot_type(w.type);
    const size_t xrb = gguf::row_bytes(dt, cols);
    const uint8_t* xs;
    if (dt == gguf::Type::F32) {
        xs = reinterpret_cast<const uint8_t*>(x);
    } else {
        if (xq.size() < xrb * size_t(n_tokens)) xq.resize(xrb * size_t(n_tokens));
        pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t)
                quant::quantize_row(dt, x + t * cols, xq.data() + size_t(t) * xrb, cols);
        });
        xs = xq.data();
    }
    const size_t wrb = gguf::row_bytes(w.type, cols);
    const quant::VecDotFn dot = quant::vec_dot_fn(w.type);
    // About 8 chunks per thread, in multiples of 16 rows (a cache line of output): a decode
    // product lasts only 0.2-1 ms, and every chunk is an atomic increment on a cache line
    // both cores write; 8 per thread still evens out a thread that starts late.
    const int64_t grain = std::max<int64_t>(16, rows / (int64_t(pool.size()) * 8) / 16 * 16);
    pool.parallel_for(rows, grain, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const uint8_t* wr = w.data + size_t(r) * wrb;
            for (int t = 0; t < n_tokens; ++t)
                out[int64_t(t) * rows + r] = dot(cols, wr, xs + size_t(t) * xrb);
        }
    });
}

// The bert encoder's attention loops (the llama forward uses generate/attention.h),
// compiled for AVX-512, AVX2 and the baseline; the loader picks
// the best the CPU has (GCC function multi-versioning). Sixteen independent partial sums
// let the compiler vectorise the reduction without reassociating floating point.
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) float dot_f32(const float* a,
                                                                               const float* b,
                                                                               int n) {
    float acc[16] = {};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
    for (int w = 8; w > 0; w /= 2)  // pairwise: stays in vector registers
        for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
    float sum = acc[0];
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void axpy_f32(float* y, float a,
                                                                               const float* x,
                                                                               int n) {
    for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

void rmsnorm(float* out, const float* x, const float* w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
    float scale = float(1.0 / std::sqrt(ss / n + eps));
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

}  // namespace ragd
