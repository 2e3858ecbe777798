// generate/quant_avx2: AVX2 + FMA + F16C dot products and activation quantizers.
//
// Compiled with -mavx2 -mfma -mf16c (generate/CMakeLists.txt) and reached only through
// quant.cpp after detected_isa() reports AVX2 or better. Everything here has internal
// linkage and the file uses no inline function or template from a header, so no
// AVX2-compiled copy of a shared function can end up in the baseline code.
//
// Integer parts are exact for every input byte (no saturating step can overflow):
//   Q8_0 x Q8_0   both sides widened to int16, vpmaddwd;
//   Q4_0 x Q8_0   maddubs(q, y) - maddubs(8, y), q in 0..15;
//   K-quants      maddubs(q, y) with unsigned q (<= 63), then vpmaddwd with the sub-block
//                 scales; Q6_K's offset 32 and the K mins come from the Q8_K bsums.
// Each block's (or super-block's) int32 lanes are converted to float and accumulated with
// one FMA by the block's scale, so results differ from the scalar kernels only by float
// rounding of the scaling and summation order.
#include "generate/quant.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace ragd::quant::detail {
namespace {

inline uint16_t ld16(const uint8_t* p) {
    uint16_t v;
    __builtin_memcpy(&v, p, 2);
    return v;
}
inline uint32_t ld32(const uint8_t* p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
inline float ldh(const uint8_t* p) {
    return _cvtsh_ss(ld16(p));
}
inline float ldf(const uint8_t* p) {
    float v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
inline __m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m128i load128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---- float rows ------------------------------------------------------------------------
inline __m256 load_f16x8(const uint8_t* p) {
    return _mm256_cvtph_ps(load128(p));
}
inline __m256 load_bf16x8(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}
inline float bf16(const uint8_t* p) {
    uint32_t b = uint32_t(ld16(p)) << 16;
    float f;
    __builtin_memcpy(&f, &b, 4);
    return f;
}

float dot_f32(int64_t n, const void* wv, const void* xv) {
    const float* w = static_cast<const float*>(wv);
    const float* x = static_cast<const float*>(xv);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += w[i] * x[i];
    return s;
}

template <bool Bf16>
float dot_half(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const float* x = static_cast<const float*>(xv);
    auto load = [](const uint8_t* p) { return Bf16 ? load_bf16x8(p) : load_f16x8(p); };
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load(w + 2 * i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load(w + 2 * i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += (Bf16 ? bf16(w + 2 * i) : ldh(w + 2 * i)) * x[i];
    return s;
}

// ---- Q8_0 / Q4_0 -----------------------------------------------------------------------
constexpr int64_t Q8_0_BYTES = 34, Q4_0_BYTES = 18;

// The integer sums of one Q8_0 x Q8_0 block in 8 lanes.
inline __m256i q8_0_sums(const uint8_t* w, const uint8_t* x) {
    __m256i w0 = _mm256_cvtepi8_epi16(load128(w + 2)), w1 = _mm256_cvtepi8_epi16(load128(w + 18));
    __m256i x0 = _mm256_cvtepi8_epi16(load128(x + 2)), x1 = _mm256_cvtepi8_epi16(load128(x + 18));
    return _mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1));
}

// The integer sums of one Q4_0 x Q8_0 block in 8 lanes.
inline __m256i q4_0_sums(const uint8_t* w, const uint8_t* x) {
    const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    __m128i q = load128(w + 2);
    // low lane: low nibbles (elements 0..15); high lane: high nibbles (16..31)
    __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
    __m256i y = load256(x + 2);
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, y), _mm256_maddubs_epi16(eight, y));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Blocks of 32 against Q8_0 activations, four at a time: their scales (fp16 at w, w + WB,
// .. and at x, x + 34, ..) are converted and multiplied together, then broadcast.
template <int64_t WB, __m256i (*Sums)(const uint8_t*, const uint8_t*)>
float dot_blocks32(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t nb = n / 32;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4, w += 4 * WB, x += 4 * Q8_0_BYTES) {
        __m128i hw = _mm_cvtsi32_si128(ld16(w)), hx = _mm_cvtsi32_si128(ld16(x));
        hw = _mm_insert_epi16(hw, ld16(w + WB), 1);
        hw = _mm_insert_epi16(hw, ld16(w + 2 * WB), 2);
        hw = _mm_insert_epi16(hw, ld16(w + 3 * WB), 3);
        hx = _mm_insert_epi16(hx, ld16(x + Q8_0_BYTES), 1);
        hx = _mm_insert_epi16(hx, ld16(x + 2 * Q8_0_BYTES), 2);
        hx = _mm_insert_epi16(hx, ld16(x + 3 * Q8_0_BYTES), 3);
        const __m256 d = _mm256_castps128_ps256(_mm_mul_ps(_mm_cvtph_ps(hw), _mm_cvtph_ps(hx)));
        const __m256i one = _mm256_set1_epi32(1);
        const __m256i k0 = _mm256_setzero_si256(), k1 = one, k2 = _mm256_add_epi32(one, one),
                      k3 = _mm256_add_epi32(k2, one);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Sums(w, x)), _mm256_permutevar8x32_ps(d, k0), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Sums(w + WB, x + Q8_0_BYTES)),
                             _mm256_permutevar8x32_ps(d, k1), a1);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Sums(w + 2 * WB, x + 2 * Q8_0_BYTES)),
                             _mm256_permutevar8x32_ps(d, k2), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Sums(w + 3 * WB, x + 3 * Q8_0_BYTES)),
                             _mm256_permutevar8x32_ps(d, k3), a1);
    }
    for (; i < nb; ++i, w += WB, x += Q8_0_BYTES)
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Sums(w, x)), _mm256_set1_ps(ldh(w) * ldh(x)), a0);
    return hsum(_mm256_add_ps(a0, a1));
}

// ---- K-quants --------------------------------------------------------------------------
constexpr int64_t Q4_K_BYTES = 144, Q5_K_BYTES = 176, Q6_K_BYTES = 210, Q8_K_BYTES = 292;

// The eight 6-bit scales and mins of a Q4_K/Q5_K block, as bytes in two 64-bit words.
// The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K/Q5_K block from its
// 12 packed bytes at s (16 bytes are read; the block continues past them). With the packed
// bytes as dwords a, b, c: scales = [a & 0x3f.., (c & 0x0f..) | ((a >> 2) & 0x30..)],
// mins = [b & 0x3f.., ((c >> 4) & 0x0f..) | ((b >> 2) & 0x30..)].
inline __m128i k_scales_mins(const uint8_t* s) {
    const __m128i raw = load128(s);
    const __m128i p = _mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 1, 2, 0));  // a c b c
    const __m128i q = _mm_shuffle_epi32(raw, _MM_SHUFFLE(1, 1, 0, 0));  // a a b b
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(p, _mm_set_epi32(4, 0, 0, 0)),
                                     _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi =
        _mm_and_si128(_mm_srli_epi32(q, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(lo, hi);
}

// Byte-shuffle indices broadcasting 16-bit word j over a 128-bit lane.
inline __m256i word_broadcast_index(int j) {
    return _mm256_set1_epi16(int16_t((2 * j) | ((2 * j + 1) << 8)));
}

template <bool Five>
float dot_k45(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t bytes = Five ? Q5_K_BYTES : Q4_K_BYTES;
    const __m256i m4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, w += bytes, x += Q8_K_BYTES) {
        const __m128i sm = k_scales_mins(w + 4);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));  // m0 m0 m1 m1 ..
        const __m256i summ = _mm256_madd_epi16(load256(x + 260), m16);

        const uint8_t* qs = w + (Five ? 48 : 16);
        const uint8_t* y = x + 4;
        __m256i hb = Five ? load256(w + 16) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) {
            __m256i q = load256(qs + 32 * g);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (Five) {  // bit 2g of qh for the low nibbles, 2g+1 for the high ones
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            __m256i plo = _mm256_maddubs_epi16(lo, load256(y + 64 * g));
            __m256i phi = _mm256_maddubs_epi16(hi, load256(y + 64 * g + 32));
            plo = _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc16, word_broadcast_index(2 * g)));
            phi =
                _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc16, word_broadcast_index(2 * g + 1)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
        }
        const float dy = ldf(x);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ldh(w) * dy), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(ldh(w + 2) * dy), accm);
    }
    return hsum(acc) - hsum(accm);
}

float dot_q6_k(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const __m128i sc = load128(w + 192);
        // sum_j sc_j * (sum of y over sub-block j): the weights are stored as q + 32
        const __m256i corr = _mm256_madd_epi16(load256(x + 260), _mm256_cvtepi8_epi16(sc));
        const uint8_t* y = x + 4;
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = w + 64 * h;
            const __m256i qh = load256(w + 128 + 32 * h);
            const __m256i ql0 = load256(ql), ql1 = load256(ql + 32);
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            u[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_and_si256(qh, m30));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                // scales 8h+2k (elements 0..15 of this 32) and 8h+2k+1 (16..31)
                const int j = 8 * h + 2 * k;
                const __m128i idx =
                    _mm_set_epi64x(0x0101010101010101ll * (j + 1), 0x0101010101010101ll * j);
                const __m256i s16 = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, idx));
                __m256i p = _mm256_maddubs_epi16(u[k], load256(y + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s16));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ldh(w + 208) * ldf(x)), acc);
    }
    return hsum(acc);
}

// ---- activation quantizers (same bytes as the scalar ones) -----------------------------
inline float max_abs8(__m256 a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// Rounds 32 floats times id to nearest even and stores them as int8 at q; returns the int32
// vectors' pairwise sums for bsums (elements 0..15 in s[0], 16..31 in s[1]).
inline void round_store32(const float* x, __m256 id, uint8_t* q, int* sums) {
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    if (sums) {
        __m256i s = _mm256_hadd_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        // s = [a01 a23 b01 b23 | a45 a67 b45 b67]
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        t = _mm_hadd_epi32(t, t);  // [a, b, a, b]
        sums[0] = _mm_cvtsi128_si32(t);
        sums[1] = _mm_extract_epi32(t, 1);
    }
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p);
}

inline __m256 abs8(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
    uint8_t* b = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32, b += Q8_0_BYTES) {
        __m256 m = _mm256_max_ps(
            _mm256_max_ps(abs8(_mm256_loadu_ps(x)), abs8(_mm256_loadu_ps(x + 8))),
            _mm256_max_ps(abs8(_mm256_loadu_ps(x + 16)), abs8(_mm256_loadu_ps(x + 24))));
        float d = max_abs8(m) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        __builtin_memcpy(b, &dh, 2);
        round_store32(x, _mm256_set1_ps(id), b + 2, nullptr);
    }
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
    uint8_t* b = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < n / 256; ++i, x += 256, b += Q8_K_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int l = 0; l < 256; l += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + l)));
        float d = max_abs8(m) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        __builtin_memcpy(b, &d, 4);
        int sums[16];
        for (int j = 0; j < 8; ++j)
            round_store32(x + 32 * j, _mm256_set1_ps(id), b + 4 + 32 * j, sums + 2 * j);
        for (int j = 0; j < 16; ++j) {
            int16_t s = int16_t(sums[j]);
            __builtin_memcpy(b + 260 + 2 * j, &s, 2);
        }
    }
}

}  // namespace

using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

VecDotFn avx2_vec_dot(Type t) {
    switch (t) {
        case Type::F32:
            return dot_f32;
        case Type::F16:
            return dot_half<false>;
        case Type::BF16:
            return dot_half<true>;
        case Type::Q8_0:
            return dot_blocks32<Q8_0_BYTES, q8_0_sums>;
        case Type::Q4_0:
            return dot_blocks32<Q4_0_BYTES, q4_0_sums>;
        case Type::Q4_K:
            return dot_k45<false>;
        case Type::Q5_K:
            return dot_k45<true>;
        case Type::Q6_K:
            return dot_q6_k;
        default:
            return nullptr;
    }
}

QuantizeFn avx2_quantize(Type t) {
    switch (t) {
        case Type::Q8_0:
            return quantize_q8_0;
        case Type::Q8_K:
            return quantize_q8_k;
        default:
            return nullptr;
    }
}

}  // namespace ragd::quant::detail

#else  // built without AVX2: no kernels at this level

namespace ragd::quant::detail {
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
VecDotFn avx2_vec_dot(Type) {
    return nullptr;
}
QuantizeFn avx2_quantize(Type) {
    return nullptr;
}
}  // namespace ragd::quant::detail

#endif
