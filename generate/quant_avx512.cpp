// generate/quant_avx512: AVX-512 (F, BW, VL, DQ) dot products, a VNNI variant of the
// integer ones, and the activation quantizers.
//
// Compiled with the AVX-512 flags of generate/CMakeLists.txt and reached only through
// quant.cpp after detected_isa() reports AVX512 (or AVX512_VNNI for the VNNI kernels).
// Everything has internal linkage and no header inline function or template is used, so
// no AVX-512 copy of shared code can leak into the baseline.
//
// Integer parts are exact for every input byte:
//   Q8_0 x Q8_0   AVX512: widened to int16, vpmaddwd. VNNI: vpdpbusd takes unsigned x
//                 signed bytes, so the weights go in as w + 128 (w xor 0x80) and
//                 128 * sum(y) (one more vpdpbusd) is subtracted;
//   Q4_0 x Q8_0   q in 0..15: (q . y) - 8 * sum(y), both as byte dot products;
//   K-quants      maddubs(q, y) (q <= 63, so the int16 pairs cannot saturate), then the
//                 sub-block scales as int16: vpmaddwd (AVX512) or vpdpwssd (VNNI);
//                 Q6_K's offset 32 and the K mins come from the Q8_K bsums.
// Two 32-element blocks share a 512-bit register; their lanes are converted to float and
// accumulated with one FMA by a vector holding each block's scale.
#include "generate/quant.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__) && defined(__AVX512VNNI__) && defined(__F16C__) && defined(__FMA__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// (and -Wuninitialized) report at every use (GCC bug 105593, fixed in 12.3/13): silence
// these false positives in this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
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
inline __m512i load512(const void* p) {
    return _mm512_loadu_si512(p);
}
inline __m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m128i load128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
// Two 32-byte pieces in one register: a in bytes 0..31, b in 32..63.
inline __m512i load2x256(const void* a, const void* b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(a)), load256(b), 1);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline float hsum(__m512 v) {
    return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

// acc + sum of each 2 adjacent int16 products (vpdpwssd with VNNI).
template <bool Vnni>
inline __m512i dot_s16(__m512i acc, __m512i a, __m512i b) {
    if constexpr (Vnni) {
        return _mm512_dpwssd_epi32(acc, a, b);
    } else {
        return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
    }
}

// ---- float rows ------------------------------------------------------------------------
inline __m512 load_f16x16(const uint8_t* p) {
    return _mm512_cvtph_ps(load256(p));
}
inline __m512 load_bf16x16(const uint8_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
}

// w: fp16 (Bf16 false) or bf16; x: float.
template <bool Bf16>
float dot_half(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const float* x = static_cast<const float*>(xv);
    auto load = [](const uint8_t* p) { return Bf16 ? load_bf16x16(p) : load_f16x16(p); };
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(load(w + 2 * i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(load(w + 2 * (i + 16)), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(load(w + 2 * (i + 32)), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(load(w + 2 * (i + 48)), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load(w + 2 * i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {  // the last 1..15 elements, masked
        const __mmask16 k = __mmask16((1u << (n - i)) - 1);
        const __m256i h = _mm256_maskz_loadu_epi16(k, w + 2 * i);
        const __m512 wt = Bf16
                              ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                              : _mm512_cvtph_ps(h);
        a1 = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(k, x + i), a1);
    }
    return hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// ---- Q8_0 / Q4_0 -----------------------------------------------------------------------
constexpr int64_t Q8_0_BYTES = 34, Q4_0_BYTES = 18;

// Scale vector for two blocks: lanes 0..7 s0, lanes 8..15 s1.
inline __m512 two_scales(float s0, float s1) {
    return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

// Scales of four consecutive blocks (fp16 at w, w + ws, ...; x likewise with stride 34),
// multiplied: lo = [s0 x8, s1 x8], hi = [s2 x8, s3 x8].
inline void four_scales(const uint8_t* w, int64_t ws, const uint8_t* x, __m512& lo, __m512& hi) {
    __m128i hw = _mm_cvtsi32_si128(ld16(w));
    hw = _mm_insert_epi16(hw, ld16(w + ws), 1);
    hw = _mm_insert_epi16(hw, ld16(w + 2 * ws), 2);
    hw = _mm_insert_epi16(hw, ld16(w + 3 * ws), 3);
    __m128i hx = _mm_cvtsi32_si128(ld16(x));
    hx = _mm_insert_epi16(hx, ld16(x + Q8_0_BYTES), 1);
    hx = _mm_insert_epi16(hx, ld16(x + 2 * Q8_0_BYTES), 2);
    hx = _mm_insert_epi16(hx, ld16(x + 3 * Q8_0_BYTES), 3);
    const __m512 s = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(hw), _mm_cvtph_ps(hx)));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    lo = _mm512_permutexvar_ps(idx, s);
    hi = _mm512_permutexvar_ps(_mm512_add_epi32(idx, _mm512_set1_epi32(2)), s);
}

// Q8_0 x Q8_0, one block, 16 lanes (exact without VNNI).
inline __m512 q8_0_one(const uint8_t* w, const uint8_t* x, __m512 acc) {
    __m512i s = _mm512_madd_epi16(_mm512_cvtepi8_epi16(load256(w + 2)),
                                  _mm512_cvtepi8_epi16(load256(x + 2)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(ldh(w) * ldh(x)), acc);
}

// Integer sums of two Q8_0 x Q8_0 blocks with VNNI: lanes 0..7 block 0, 8..15 block 1.
inline __m512i q8_0_two_vnni(const uint8_t* w, const uint8_t* x) {
    const __m512i bias = _mm512_set1_epi8(char(0x80));
    __m512i u = _mm512_xor_si512(load2x256(w + 2, w + 2 + Q8_0_BYTES), bias);  // w + 128
    __m512i y = load2x256(x + 2, x + 2 + Q8_0_BYTES);
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, y));  // - 128 sum(y)
}

template <bool Vnni>
float dot_q8_0(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t nb = n / 32;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t i = 0;
    if constexpr (Vnni) {
        for (; i + 4 <= nb; i += 4) {
            const uint8_t* wb = w + i * Q8_0_BYTES;
            const uint8_t* xb = x + i * Q8_0_BYTES;
            __m512 d0, d1;
            four_scales(wb, Q8_0_BYTES, xb, d0, d1);
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q8_0_two_vnni(wb, xb)), d0, a0);
            a1 = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(q8_0_two_vnni(wb + 2 * Q8_0_BYTES, xb + 2 * Q8_0_BYTES)), d1,
                a1);
        }
        if (i + 2 <= nb) {
            const uint8_t* wb = w + i * Q8_0_BYTES;
            const uint8_t* xb = x + i * Q8_0_BYTES;
            __m512 d = two_scales(ldh(wb) * ldh(xb), ldh(wb + Q8_0_BYTES) * ldh(xb + Q8_0_BYTES));
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q8_0_two_vnni(wb, xb)), d, a0);
            i += 2;
        }
    } else {
        for (; i + 2 <= nb; i += 2) {
            a0 = q8_0_one(w + i * Q8_0_BYTES, x + i * Q8_0_BYTES, a0);
            a1 = q8_0_one(w + (i + 1) * Q8_0_BYTES, x + (i + 1) * Q8_0_BYTES, a1);
        }
    }
    if (i < nb) a1 = q8_0_one(w + i * Q8_0_BYTES, x + i * Q8_0_BYTES, a1);
    return hsum(_mm512_add_ps(a0, a1));
}

// Integer sums of two Q4_0 x Q8_0 blocks: lanes 0..7 block 0, 8..15 block 1. The nibbles
// are spread to [lo0 hi0 lo1 hi1] (16 bytes each) to match the activations' order.
template <bool Vnni>
inline __m512i q4_0_two(const uint8_t* w, const uint8_t* x) {
    const __m512i m4 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);  // per 128-bit lane
    __m512i q =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(load128(w + 2))),
                           _mm256_broadcastsi128_si256(load128(w + 2 + Q4_0_BYTES)), 1);
    __m512i u = _mm512_and_si512(_mm512_srlv_epi64(q, shift), m4);
    __m512i y = load2x256(x + 2, x + 2 + Q8_0_BYTES);
    if constexpr (Vnni) {
        return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y),
                                _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, y));
    } else {
        __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(u, y), _mm512_maddubs_epi16(eight, y));
        return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
    }
}

// Q4_0 x Q8_0, one block in 256-bit registers.
inline __m256 q4_0_one(const uint8_t* w, const uint8_t* x, __m256 acc) {
    const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    __m128i q = load128(w + 2);
    __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
    __m256i y = load256(x + 2);
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, y), _mm256_maddubs_epi16(eight, y));
    __m256i s = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(ldh(w) * ldh(x)), acc);
}

template <bool Vnni>
float dot_q4_0(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t nb = n / 32;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t* wb = w + i * Q4_0_BYTES;
        const uint8_t* xb = x + i * Q8_0_BYTES;
        __m512 d0, d1;
        four_scales(wb, Q4_0_BYTES, xb, d0, d1);
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_0_two<Vnni>(wb, xb)), d0, a0);
        a1 = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(q4_0_two<Vnni>(wb + 2 * Q4_0_BYTES, xb + 2 * Q8_0_BYTES)), d1, a1);
    }
    if (i + 2 <= nb) {
        const uint8_t* wb = w + i * Q4_0_BYTES;
        const uint8_t* xb = x + i * Q8_0_BYTES;
        __m512 d = two_scales(ldh(wb) * ldh(xb), ldh(wb + Q4_0_BYTES) * ldh(xb + Q8_0_BYTES));
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_0_two<Vnni>(wb, xb)), d, a0);
        i += 2;
    }
    float s = hsum(_mm512_add_ps(a0, a1));
    if (i < nb) s += hsum(q4_0_one(w + i * Q4_0_BYTES, x + i * Q8_0_BYTES, _mm256_setzero_ps()));
    return s;
}

// ---- K-quants --------------------------------------------------------------------------
constexpr int64_t Q4_K_BYTES = 144, Q5_K_BYTES = 176, Q6_K_BYTES = 210, Q8_K_BYTES = 292;

// Index tables for vpermw, built at compile time.
struct KTables {
    alignas(64) int16_t k45_scale[4][32];  // group g: words [2g x16, 2g+1 x16]
    alignas(64) int16_t q6_scale[4][32];   // 64 elements at 64c: pair p uses scale 4c + p/8
    alignas(32) int16_t k45_min[16];       // mins (words 8..15) duplicated: 8 8 9 9 .. 15 15
    constexpr KTables() : k45_scale(), q6_scale(), k45_min() {
        for (int g = 0; g < 4; ++g)
            for (int p = 0; p < 32; ++p) {
                k45_scale[g][p] = int16_t(2 * g + p / 16);
                q6_scale[g][p] = int16_t(4 * g + p / 8);
            }
        for (int j = 0; j < 16; ++j) k45_min[j] = int16_t(8 + j / 2);
    }
};
constexpr KTables kTables;

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

// Q4_K / Q5_K: group g's 32 bytes of qs are broadcast to both halves of a register and
// shifted by 0 / 4 bits, giving sub-blocks 2g (low nibbles) and 2g+1 (high nibbles) in the
// order the activations have; Q5_K's fifth bit is added under a byte mask; each pair of
// sub-blocks is scaled with one vpermw of the scales.
template <bool Five, bool Vnni>
float dot_k45(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t bytes = Five ? Q5_K_BYTES : Q4_K_BYTES;
    const __m512i m4 = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(16);
    const __m512i nib_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    // qh bit 2g for the first half (low nibbles), 2g+1 for the second, at group g
    const __m512i hmask0 = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8(1), _mm512_set1_epi8(2));
    const __m512i idx0 = load512(kTables.k45_scale[0]), idx1 = load512(kTables.k45_scale[1]);
    const __m512i idx2 = load512(kTables.k45_scale[2]), idx3 = load512(kTables.k45_scale[3]);
    const __m256i min_idx = load256(kTables.k45_min);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, w += bytes, x += Q8_K_BYTES) {
        const __m256i sm = _mm256_cvtepu8_epi16(k_scales_mins(w + 4));  // words: sc0..7 m0..7
        const __m512i sc = _mm512_castsi256_si512(sm);
        const __m256i summ =
            _mm256_madd_epi16(load256(x + 260), _mm256_permutexvar_epi16(min_idx, sm));
        const uint8_t* qs = w + (Five ? 48 : 16);
        const uint8_t* y = x + 4;
        __m512i hb = _mm512_setzero_si512(), hmask = hmask0;
        if constexpr (Five) hb = _mm512_broadcast_i64x4(load256(w + 16));
        __m512i p[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) {
            __m512i u = _mm512_and_si512(
                _mm512_srlv_epi64(_mm512_broadcast_i64x4(load256(qs + 32 * g)), nib_shift), m4);
            if constexpr (Five) {
                u = _mm512_mask_add_epi8(u, _mm512_test_epi8_mask(hb, hmask), u, bit4);
                hmask = _mm512_slli_epi64(hmask, 2);
            }
            p[g] = _mm512_maddubs_epi16(u, load512(y + 64 * g));
        }
        const __m512i zero = _mm512_setzero_si512();
        __m512i s01 = dot_s16<Vnni>(dot_s16<Vnni>(zero, p[0], _mm512_permutexvar_epi16(idx0, sc)),
                                    p[1], _mm512_permutexvar_epi16(idx1, sc));
        __m512i s23 = dot_s16<Vnni>(dot_s16<Vnni>(zero, p[2], _mm512_permutexvar_epi16(idx2, sc)),
                                    p[3], _mm512_permutexvar_epi16(idx3, sc));
        // d * dy on the scaled sums, dmin * dy on the mins
        const __m128 dm =
            _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(int(ld32(w)))), _mm_set1_ps(ldf(x)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s01, s23)),
                              _mm512_broadcastss_ps(dm), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_broadcastss_ps(_mm_movehdup_ps(dm)),
                               accm);
    }
    return hsum(acc) - hsum(accm);
}

template <bool Vnni>
float dot_q6_k(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i qh_shift = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    const __m512i idx0 = load512(kTables.q6_scale[0]), idx1 = load512(kTables.q6_scale[1]);
    const __m512i idx2 = load512(kTables.q6_scale[2]), idx3 = load512(kTables.q6_scale[3]);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const __m256i sc = _mm256_cvtepi8_epi16(load128(w + 192));
        const __m512i sc512 = _mm512_castsi256_si512(sc);
        const __m256i corr = _mm256_madd_epi16(load256(x + 260), sc);  // sc_j * sum_j(y)
        const uint8_t* y = x + 4;
        __m512i p[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(w + 64 * h);
            // [qh, qh >> 2]: bits 0-1, then bits 4-5 of each byte are the high bits
            const __m512i t =
                _mm512_srlv_epi64(_mm512_broadcast_i64x4(load256(w + 128 + 32 * h)), qh_shift);
            __m512i ua = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                         _mm512_and_si512(_mm512_slli_epi16(t, 4), m30));
            __m512i ub = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                         _mm512_and_si512(t, m30));
            p[2 * h] = _mm512_maddubs_epi16(ua, load512(y + 128 * h));
            p[2 * h + 1] = _mm512_maddubs_epi16(ub, load512(y + 128 * h + 64));
        }
        const __m512i zero = _mm512_setzero_si512();
        __m512i s01 =
            dot_s16<Vnni>(dot_s16<Vnni>(zero, p[0], _mm512_permutexvar_epi16(idx0, sc512)), p[1],
                          _mm512_permutexvar_epi16(idx1, sc512));
        __m512i s23 =
            dot_s16<Vnni>(dot_s16<Vnni>(zero, p[2], _mm512_permutexvar_epi16(idx2, sc512)), p[3],
                          _mm512_permutexvar_epi16(idx3, sc512));
        // the offset 32 folded into lanes 0..7
        const __m512i s = _mm512_sub_epi32(_mm512_add_epi32(s01, s23),
                                           _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(ldh(w + 208) * ldf(x)), acc);
    }
    return hsum(acc);
}

// ---- activation quantizers (same bytes as the scalar ones) -----------------------------
inline __m512 abs16(__m512 v) {
    return _mm512_abs_ps(v);
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
    uint8_t* b = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32, b += Q8_0_BYTES) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float d = _mm512_reduce_max_ps(_mm512_max_ps(abs16(v0), abs16(v1))) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        __builtin_memcpy(b, &dh, 2);
        const __m512 vid = _mm512_set1_ps(id);
        __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));
        __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + 2), _mm256_set_m128i(q1, q0));
    }
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
    uint8_t* b = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < n / 256; ++i, x += 256, b += Q8_K_BYTES) {
        __m512 m = _mm512_setzero_ps();
        for (int l = 0; l < 256; l += 16) m = _mm512_max_ps(m, abs16(_mm512_loadu_ps(x + l)));
        float d = _mm512_reduce_max_ps(m) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        __builtin_memcpy(b, &d, 4);
        const __m512 vid = _mm512_set1_ps(id);
        for (int j = 0; j < 16; ++j) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), vid));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(b + 4 + 16 * j), _mm512_cvtsepi32_epi8(q));
            int16_t s = int16_t(_mm512_reduce_add_epi32(q));
            __builtin_memcpy(b + 260 + 2 * j, &s, 2);
        }
    }
}

}  // namespace

using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

VecDotFn avx512_vec_dot(Type t) {
    switch (t) {
        // F32 has none: 512-bit loads of float rows measured slower than the AVX2 kernel
        // (an unaligned 64-byte load always splits a cache line), so AVX2's is used.
        case Type::F16:
            return dot_half<false>;
        case Type::BF16:
            return dot_half<true>;
        case Type::Q8_0:
            return dot_q8_0<false>;
        case Type::Q4_0:
            return dot_q4_0<false>;
        case Type::Q4_K:
            return dot_k45<false, false>;
        case Type::Q5_K:
            return dot_k45<true, false>;
        case Type::Q6_K:
            return dot_q6_k<false>;
        default:
            return nullptr;
    }
}

// Only the integer kernels have a VNNI form; the float ones are the AVX512 level's.
VecDotFn avx512vnni_vec_dot(Type t) {
    switch (t) {
        case Type::Q8_0:
            return dot_q8_0<true>;
        case Type::Q4_0:
            return dot_q4_0<true>;
        case Type::Q4_K:
            return dot_k45<false, true>;
        case Type::Q5_K:
            return dot_k45<true, true>;
        case Type::Q6_K:
            return dot_q6_k<true>;
        default:
            return nullptr;
    }
}

QuantizeFn avx512_quantize(Type t) {
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

#else  // built without AVX-512: no kernels at these levels

namespace ragd::quant::detail {
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
VecDotFn avx512_vec_dot(Type) {
    return nullptr;
}
VecDotFn avx512vnni_vec_dot(Type) {
    return nullptr;
}
QuantizeFn avx512_quantize(Type) {
    return nullptr;
}
}  // namespace ragd::quant::detail

#endif
