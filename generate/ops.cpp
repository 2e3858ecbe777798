#include "generate/ops.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// The rows of several matrices taken as one concatenation, matrix i's rows starting at
// first[i] (first[n] is the total): calls fn(i, r0, r1) for the rows [r0, r1) of each
// matrix that meet [b, e). Decode and the read pass split the concatenation across the
// threads, so the threads meet once for all the matrices.
template <class Fn>
void for_rows(const int64_t* first, int64_t b, int64_t e, Fn fn) {
    size_t i = 0;
    while (first[i + 1] <= b) ++i;
    for (; b < e; ++i) {
        const int64_t r0 = b - first[i], r1 = std::min(first[i + 1], e) - first[i];
        fn(i, r0, r1);
        b = first[i] + r1;
    }
}

// Decode (and types without a blocked GEMM): x converted once per dot-product format the
// matrices need (Q8_0, Q8_K, or none for F32; the matrices of one call may differ in
// type, as a Q4_K_M layer's do), then one job over the rows of all the matrices. Runs
// ~100 times a token, so its bookkeeping lives in fixed arrays, not on the heap.
constexpr int kMaxProducts = 4;

void matmul_vec_dot(ThreadPool& pool, const MatmulOut* products, int n_products, const float* x,
                    int n_tokens, std::vector<uint8_t>& xq) {
    const int64_t cols = products[0].w->ne[0];
    struct Part {
        size_t wrb, xrb;
        quant::VecDotFn dot;
        const uint8_t* xs;
    };
    std::array<Part, kMaxProducts> parts;
    std::array<int64_t, kMaxProducts + 1> first{};
    std::array<gguf::Type, kMaxProducts> formats;         // at most one per product
    std::array<size_t, kMaxProducts> format_of, offsets;  // offsets: each format's rows in xq
    size_t n_formats = 0, xq_bytes = 0;
    for (int i = 0; i < n_products; ++i) {
        const gguf::Tensor& w = *products[i].w;
        const gguf::Type dt = quant::vec_dot_type(w.type);
        const size_t xrb = gguf::row_bytes(dt, cols);
        size_t f = 0;
        while (f < n_formats && formats[f] != dt) ++f;
        if (f == n_formats) {
            formats[n_formats++] = dt;
            offsets[f] = xq_bytes;
            if (dt != gguf::Type::F32) xq_bytes += (xrb * size_t(n_tokens) + 63) / 64 * 64;
        }
        parts[size_t(i)] = {gguf::row_bytes(w.type, cols), xrb, quant::vec_dot_fn(w.type), nullptr};
        format_of[size_t(i)] = f;
        first[size_t(i) + 1] = first[size_t(i)] + w.ne[1];
    }
    if (xq.size() < xq_bytes) xq.resize(xq_bytes);
    for (size_t f = 0; f < n_formats; ++f) {
        if (formats[f] == gguf::Type::F32) continue;
        const size_t xrb = gguf::row_bytes(formats[f], cols);
        uint8_t* dst = xq.data() + offsets[f];
        pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t)
                quant::quantize_row(formats[f], x + t * cols, dst + size_t(t) * xrb, cols);
        });
    }
    for (int i = 0; i < n_products; ++i) {
        const size_t f = format_of[size_t(i)];
        parts[size_t(i)].xs = formats[f] == gguf::Type::F32 ? reinterpret_cast<const uint8_t*>(x)
                                                            : xq.data() + offsets[f];
    }
    // At least 16 rows a chunk (a cache line of output), guided: the threads finish within
    // about 16 rows of each other.
    pool.parallel_for(first[size_t(n_products)], 16, [&](int64_t b, int64_t e) {
        for_rows(first.data(), b, e, [&](size_t i, int64_t r0, int64_t r1) {
            const Part& part = parts[i];
            const uint8_t* w = products[i].w->data;
            float* out = products[i].out;
            const int64_t rows = products[i].w->ne[1];
            for (int64_t r = r0; r < r1; ++r)
                for (int t = 0; t < n_tokens; ++t)
                    out[int64_t(t) * rows + r] =
                        part.dot(cols, w + size_t(r) * part.wrb, part.xs + size_t(t) * part.xrb);
        });
    });
}

}  // namespace

// out[t * rows + r] = W[r] · x[t] for t < n_tokens: activations are converted once to
// the weights' dot-product format, then rows are split across threads; each row is read
// once for all tokens of the batch (and unpacked once, with the blocked GEMM).
void matmul(ThreadPool& pool, const gguf::Tensor& w, const float* x, int n_tokens,
            std::vector<uint8_t>& xq, float* out) {
    const MatmulOut one{&w, out};
    matmul(pool, &one, 1, x, n_tokens, xq);
}

void matmul(ThreadPool& pool, const MatmulOut* products, int n_products, const float* x,
            int n_tokens, std::vector<uint8_t>& xq) {
    if (n_tokens < kGemmMinTokens) {
        for (int i = 0; i < n_products; i += kMaxProducts)
            matmul_vec_dot(pool, products + i, std::min(kMaxProducts, n_products - i), x, n_tokens,
                           xq);
        return;
    }
    // Prefill: each product is long enough for its own barrier not to matter.
    for (int i = 0; i < n_products; ++i) {
        if (const quant::Gemm* gm = quant::gemm_fn(products[i].w->type))
            matmul_gemm(pool, *gm, *products[i].w, x, n_tokens, xq, products[i].out);
        else
            matmul_vec_dot(pool, products + i, 1, x, n_tokens, xq);
    }
}

namespace {

// The widest loads the CPU has, 256 bytes a step, summed as bytes (vpsadbw against zero)
// so the result is the same at every level and testable. The step matters on Zen 5: two
// 64-byte loads a step read at 24 GB/s on one core, four at 38 (as fast as a plain add of
// the words); GCC 12's generic vectors with target_clones, indexed, at 26-31.
uint64_t sum_tail(const uint8_t* p, const uint8_t* end, uint64_t sum) {
    for (; p < end; ++p) sum += *p;
    return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx512bw"))) uint64_t sum_bytes_avx512(const uint8_t* p, size_t n) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i a = zero, b = zero, c = zero, d = zero;
    const uint8_t* end = p + n / 256 * 256;
    for (; p < end; p += 256) {
        a = _mm512_add_epi64(a, _mm512_sad_epu8(_mm512_loadu_si512(p), zero));
        b = _mm512_add_epi64(b, _mm512_sad_epu8(_mm512_loadu_si512(p + 64), zero));
        c = _mm512_add_epi64(c, _mm512_sad_epu8(_mm512_loadu_si512(p + 128), zero));
        d = _mm512_add_epi64(d, _mm512_sad_epu8(_mm512_loadu_si512(p + 192), zero));
    }
    alignas(64) uint64_t lanes[8];  // (_mm512_reduce_add_epi64 trips GCC 12's -Wuninitialized)
    _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
    uint64_t sum = 0;
    for (uint64_t lane : lanes) sum += lane;
    return sum_tail(p, p + n % 256, sum);
}

__attribute__((target("avx2"))) uint64_t sum_bytes_avx2(const uint8_t* p, size_t n) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i a = zero, b = zero, c = zero, d = zero;
    const uint8_t* end = p + n / 128 * 128;
    for (; p < end; p += 128) {
        const __m256i* v = reinterpret_cast<const __m256i*>(p);
        a = _mm256_add_epi64(a, _mm256_sad_epu8(_mm256_loadu_si256(v), zero));
        b = _mm256_add_epi64(b, _mm256_sad_epu8(_mm256_loadu_si256(v + 1), zero));
        c = _mm256_add_epi64(c, _mm256_sad_epu8(_mm256_loadu_si256(v + 2), zero));
        d = _mm256_add_epi64(d, _mm256_sad_epu8(_mm256_loadu_si256(v + 3), zero));
    }
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                       _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
    return sum_tail(p, p + n % 128, lanes[0] + lanes[1] + lanes[2] + lanes[3]);
}
#endif

}  // namespace

// SwiGLU, gate[i] = silu(gate[i]) * up[i] = gate * up / (1 + e^-gate): 14,336 exponentials
// per layer and token for a 7B model, on the calling thread between two products while
// the other threads wait, so it is vectorised. e^y with y clamped to +-87.3 (2^+-126;
// beyond, the quotient is 0 or gate * up to float precision): y = n ln 2 + t with n the
// nearest integer to y log2(e) and t taken with ln 2 in two parts (Cody-Waite), so t is
// exact to float rounding whatever n; e^t, |t| <= 0.35, by a degree-6 Taylor polynomial
// (relative error < 2e-7); 2^n scaled in.
namespace {

constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpMax = 87.3f;
constexpr float kExpPoly[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};

void swiglu_scalar(float* gate, const float* up, size_t n) {
    for (size_t i = 0; i < n; ++i) gate[i] = gate[i] * up[i] / (1.0f + std::exp(-gate[i]));
}

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports at every use (GCC bug 105593, as in quant_avx512.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 y) {
    y = _mm512_min_ps(_mm512_max_ps(y, _mm512_set1_ps(-kExpMax)), _mm512_set1_ps(kExpMax));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 t = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), y);
    t = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), t);
    __m512 p = _mm512_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kExpPoly[i]));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) inline __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_div_ps(_mm512_mul_ps(g, u), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

__attribute__((target("avx512f"))) void swiglu_avx512(float* gate, const float* up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {  // the tail, masked
        const __mmask16 k = __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(
            gate + i, k,
            swiglu16(_mm512_maskz_loadu_ps(k, gate + i), _mm512_maskz_loadu_ps(k, up + i)));
    }
}
#pragma GCC diagnostic pop

__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 y) {
    y = _mm256_min_ps(_mm256_max_ps(y, _mm256_set1_ps(-kExpMax)), _mm256_set1_ps(kExpMax));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(kLog2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 t = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), y);
    t = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), t);
    __m256 p = _mm256_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kExpPoly[i]));
    const __m256i pow2n =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}

__attribute__((target("avx2,fma"))) void swiglu_avx2(float* gate, const float* up, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
        const __m256 gu = _mm256_mul_ps(g, _mm256_loadu_ps(up + i));
        _mm256_storeu_ps(gate + i, _mm256_div_ps(gu, _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    }
    swiglu_scalar(gate + i, up + i, n - i);
}
#endif

}  // namespace

// At a given instruction-set level (at most the CPU's), for the tests; the engine calls
// it with the detected one.
namespace detail {
uint64_t sum_bytes(const uint8_t* p, size_t n, quant::Isa isa) {
#if defined(__x86_64__)
    if (isa >= quant::Isa::AVX512) return sum_bytes_avx512(p, n);
    if (isa >= quant::Isa::AVX2) return sum_bytes_avx2(p, n);
#endif
    (void)isa;
    return sum_tail(p, p + n, 0);
}

void swiglu(float* gate, const float* up, size_t n, quant::Isa isa) {
#if defined(__x86_64__)
    if (isa >= quant::Isa::AVX512) return swiglu_avx512(gate, up, n);
    if (isa >= quant::Isa::AVX2) return swiglu_avx2(gate, up, n);
#endif
    (void)isa;
    swiglu_scalar(gate, up, n);
}
}  // namespace detail

void swiglu(float* gate, const float* up, size_t n) {
    static const quant::Isa isa = quant::detected_isa();
    detail::swiglu(gate, up, n, isa);
}

uint64_t read_weights(ThreadPool& pool, const gguf::Tensor* const* ws, int n) {
    if (n <= 0) return 0;
    const quant::Isa isa = quant::detected_isa();
    std::vector<int64_t> first(size_t(n) + 1, 0);
    for (int i = 0; i < n; ++i) first[size_t(i) + 1] = first[size_t(i)] + ws[i]->ne[1];
    std::atomic<uint64_t> sum{0};
    pool.parallel_for(first.back(), 16, [&](int64_t b, int64_t e) {
        uint64_t part = 0;
        for_rows(first.data(), b, e, [&](size_t i, int64_t r0, int64_t r1) {
            const size_t wrb = gguf::row_bytes(ws[i]->type, ws[i]->ne[0]);
            part += detail::sum_bytes(ws[i]->data + size_t(r0) * wrb, size_t(r1 - r0) * wrb, isa);
        });
        sum.fetch_add(part, std::memory_order_relaxed);
    });
    return sum.load();
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
