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
//   K-quants      sums of 4 products q x y per int32 lane: vpdpbusd (VNNI), or maddubs
//                 and vpmaddwd by ones (q <= 63, so maddubs's pairs cannot saturate);
//                 |sum| <= 4 * 63 * 128 fits int16, so two registers of sums are packed
//                 to int16 (vpackssdw, exact) and scaled by the sub-block scales as int16
//                 pairs: vpdpwssd (VNNI) or vpmaddwd;
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
    // Q4_K/Q5_K, two blocks a pass: [2b + h] picks block b's scales (words 16b..16b+7) for
    // the int16 packs of groups 2h and 2h+1 (see k45_block)
    alignas(64) int16_t k45_scale[4][32];
    alignas(64) int16_t k45_min[32];  // mins of block 0 (words 8..15), then of block 1
                                      // (24..31), each twice: 8 8 9 9 .. 31 31
    // Q6_K: the int16 pack h of the sums of elements 128h..128h+63 (words 0-3 of each lane L:
    // sub-block 8h + L) and 128h+64..128h+127 (words 4-7: sub-block 8h + 4 + L)
    alignas(64) int16_t q6_scale[2][32];
    constexpr KTables() : k45_scale(), k45_min(), q6_scale() {
        for (int b = 0; b < 2; ++b)
            for (int h = 0; h < 2; ++h)
                for (int p = 0; p < 32; ++p) {
                    // word p of a pack: 128-bit lane p / 8 (lanes 0-1: sub-block 2g, 2-3:
                    // 2g+1), group 2h in words 0-3 of the lane, 2h+1 in words 4-7
                    const int g = 2 * h + (p % 8) / 4;
                    k45_scale[2 * b + h][p] = int16_t(16 * b + 2 * g + p / 16);
                }
        for (int j = 0; j < 32; ++j) k45_min[j] = int16_t(8 + 16 * (j / 16) + (j % 16) / 2);
        for (int h = 0; h < 2; ++h)
            for (int p = 0; p < 32; ++p)
                q6_scale[h][p] = int16_t(8 * h + 4 * ((p % 8) / 4) + p / 8);
    }
};
constexpr KTables kTables;

// Sums of 4 adjacent u8 x s8 products, one per int32 lane: vpdpbusd, or without VNNI
// maddubs (pairs; u <= 63 cannot saturate) and vpmaddwd by ones.
template <bool Vnni>
inline __m512i dot_u8(__m512i u, __m512i y) {
    if constexpr (Vnni) {
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y);
    } else {
        return _mm512_madd_epi16(_mm512_maddubs_epi16(u, y), _mm512_set1_epi16(1));
    }
}

// acc + two registers of 4-product sums (each |s| <= 4 * 63 * 128, an int16), packed to
// int16 (vpackssdw, exact: per 128-bit lane a's 4 sums, then b's) and multiplied by the
// sub-block scales that idx picks from the words of sc: one vpdpwssd and one vpermw for
// both registers.
template <bool Vnni>
inline __m512i scale_pair(__m512i acc, __m512i a, __m512i b, __m512i idx, __m512i sc) {
    return dot_s16<Vnni>(acc, _mm512_packs_epi32(a, b), _mm512_permutexvar_epi16(idx, sc));
}

// The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K/Q5_K block from its
// 12 packed bytes at s0 in the low 128-bit lane, of the block at s1 in the high one (16
// bytes are read at each; the blocks continue past them). With the packed bytes as dwords
// a, b, c: scales = [a & 0x3f.., (c & 0x0f..) | ((a >> 2) & 0x30..)],
// mins = [b & 0x3f.., ((c >> 4) & 0x0f..) | ((b >> 2) & 0x30..)].
inline __m256i k_scales_mins(const uint8_t* s0, const uint8_t* s1) {
    const __m256i raw =
        _mm256_inserti128_si256(_mm256_castsi128_si256(load128(s0)), load128(s1), 1);
    const __m256i p = _mm256_shuffle_epi32(raw, _MM_SHUFFLE(2, 1, 2, 0));  // a c b c
    const __m256i q = _mm256_shuffle_epi32(raw, _MM_SHUFFLE(1, 1, 0, 0));  // a a b b
    const __m256i lo =
        _mm256_and_si256(_mm256_srlv_epi32(p, _mm256_set_epi32(4, 0, 0, 0, 4, 0, 0, 0)),
                         _mm256_set_epi64x(0x0f0f0f0f3f3f3f3f, 0x0f0f0f0f3f3f3f3f,
                                           0x0f0f0f0f3f3f3f3f, 0x0f0f0f0f3f3f3f3f));
    const __m256i hi =
        _mm256_and_si256(_mm256_srli_epi32(q, 2), _mm256_set1_epi64x(int64_t(0x3030303000000000)));
    return _mm256_or_si256(lo, hi);
}

// One Q4_K/Q5_K block against its activations y, scaled by the sub-block scales (words of
// sc, picked by idx0/idx1). Group g's 32 bytes of qs are broadcast to both halves of a
// register and shifted by 0 / 4 bits, giving sub-blocks 2g (low nibbles) and 2g+1 (high
// nibbles) in the order the activations have; Q5_K's fifth bit is added under a byte mask.
// The sums of 4 products of two groups are scaled together (scale_pair).
template <bool Five, bool Vnni>
inline __m512i k45_block(const uint8_t* w, const uint8_t* y, __m512i sc, __m512i idx0,
                         __m512i idx1) {
    const __m512i m4 = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(16);
    const __m512i nib_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    // qh bit 2g for the first half (low nibbles), 2g+1 for the second, at group g
    __m512i hmask = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8(1), _mm512_set1_epi8(2));
    const uint8_t* qs = w + (Five ? 48 : 16);
    __m512i hb = _mm512_setzero_si512();
    if constexpr (Five) hb = _mm512_broadcast_i64x4(load256(w + 16));
    __m512i r[4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
        __m512i u = _mm512_and_si512(
            _mm512_srlv_epi64(_mm512_broadcast_i64x4(load256(qs + 32 * g)), nib_shift), m4);
        if constexpr (Five) {
            u = _mm512_mask_add_epi8(u, _mm512_test_epi8_mask(hb, hmask), u, bit4);
            hmask = _mm512_slli_epi64(hmask, 2);
        }
        r[g] = dot_u8<Vnni>(u, load512(y + 64 * g));
    }
    const __m512i s = scale_pair<Vnni>(_mm512_setzero_si512(), r[0], r[1], idx0, sc);
    return scale_pair<Vnni>(s, r[2], r[3], idx1, sc);
}

// Q4_K / Q5_K, two blocks a pass: their scales and mins are unpacked together, and one
// conversion and FMA per accumulator apply d * dy and dmin * dy to both. An odd last block
// is paired with itself and the copy's factors are zeroed.
template <bool Five, bool Vnni>
float dot_k45(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const int64_t bytes = Five ? Q5_K_BYTES : Q4_K_BYTES, nb = n / 256;
    const __m512i idx0 = load512(kTables.k45_scale[0]), idx1 = load512(kTables.k45_scale[1]);
    const __m512i idx2 = load512(kTables.k45_scale[2]), idx3 = load512(kTables.k45_scale[3]);
    const __m512i min_idx = load512(kTables.k45_min);
    // lanes 0-7 take block 0's factor, 8-15 block 1's: [d0 dmin0 d1 dmin1] indices
    const __m512i d_idx = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i m_idx = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2, w += 2 * bytes, x += 2 * Q8_K_BYTES) {
        const bool two = i + 1 < nb;
        const uint8_t* w1 = two ? w + bytes : w;
        const uint8_t* x1 = two ? x + Q8_K_BYTES : x;
        // words: block 0's sc0..7 m0..7, block 1's sc0..7 m0..7
        const __m512i sc = _mm512_cvtepu8_epi16(k_scales_mins(w + 4, w1 + 4));
        const __m512i summ =
            _mm512_madd_epi16(load2x256(x + 260, x1 + 260), _mm512_permutexvar_epi16(min_idx, sc));
        const __m512i s0 = k45_block<Five, Vnni>(w, x + 4, sc, idx0, idx1);
        const __m512i s1 = k45_block<Five, Vnni>(w1, x1 + 4, sc, idx2, idx3);
        // lanes 0-7: block 0's sums (its two halves added), 8-15: block 1's
        const __m512i s = _mm512_add_epi32(_mm512_shuffle_i64x2(s0, s1, 0x44),
                                           _mm512_shuffle_i64x2(s0, s1, 0xEE));
        const __m128i h = _mm_insert_epi32(_mm_cvtsi32_si128(int(ld32(w))), int(ld32(w1)), 1);
        const __m128 dy = _mm_movelh_ps(_mm_set1_ps(ldf(x)), _mm_set1_ps(ldf(x1)));
        const __m512 dm = _mm512_castps128_ps512(
            _mm_maskz_mul_ps(two ? 0xF : 0x3, _mm_cvtph_ps(h), dy));  // d0 dmin0 d1 dmin1
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(d_idx, dm), acc);
        accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_permutexvar_ps(m_idx, dm), accm);
    }
    return hsum(acc) - hsum(accm);
}

// Q6_K: 6-bit quants from the low nibbles of ql and 2 bits of qh (offset 32, folded in
// through the bsums); 16 int8 scales, one per 16 elements, so each 128-bit lane of a sum
// is one sub-block. Sums of 4 products are scaled two registers at a time (scale_pair).
template <bool Vnni>
float dot_q6_k(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i qh_shift = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    const __m512i idx0 = load512(kTables.q6_scale[0]), idx1 = load512(kTables.q6_scale[1]);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        const __m256i sc = _mm256_cvtepi8_epi16(load128(w + 192));
        const __m512i sc512 = _mm512_castsi256_si512(sc);
        const __m256i corr = _mm256_madd_epi16(load256(x + 260), sc);  // sc_j * sum_j(y)
        const uint8_t* y = x + 4;
        __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(w + 64 * h);
            // [qh, qh >> 2]: bits 0-1, then bits 4-5 of each byte are the high bits;
            // vpternlog 0xEA: (a & m4) | b
            const __m512i t =
                _mm512_srlv_epi64(_mm512_broadcast_i64x4(load256(w + 128 + 32 * h)), qh_shift);
            const __m512i ua = _mm512_ternarylogic_epi64(
                ql, m4, _mm512_and_si512(_mm512_slli_epi16(t, 4), m30), 0xEA);
            const __m512i ub = _mm512_ternarylogic_epi64(_mm512_srli_epi16(ql, 4), m4,
                                                         _mm512_and_si512(t, m30), 0xEA);
            const __m512i ra = dot_u8<Vnni>(ua, load512(y + 128 * h));
            const __m512i rb = dot_u8<Vnni>(ub, load512(y + 128 * h + 64));
            s = scale_pair<Vnni>(s, ra, rb, h ? idx1 : idx0, sc512);
        }
        // the offset 32 folded into lanes 0..7
        s = _mm512_sub_epi32(s, _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
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

// ---- prefill GEMM (VNNI) ---------------------------------------------------------------
// Tokens in lanes: a 512-bit register holds 4 consecutive activation bytes of 16 tokens,
// and vpdpbusd multiplies it with 4 weight bytes of one row broadcast from memory, so a
// weight row is unpacked to plain int8 once and then used for every token without any
// horizontal sum. vpdpbusd takes unsigned x signed bytes: activations are packed as
// y + 128 (y xor 0x80) and the weights stay signed; each sub-block's integer sum starts
// at -128 * sum(q) (computed at unpack) so it comes out exactly sum(q * y).
//
// Packed activations, per group of 16 tokens (missing tokens are zero, scale 0):
//   Q8_0: [nb blocks][8 steps][16 tokens][4 bytes], then dx [nb][16] floats;
//   Q8_K: [nsb][64 steps][16][4], then dy [nsb][16], then the sums of y over each
//         32 elements [nsb][8][16] as floats (for the K mins).
// Unpacked weight row (scratch): q[n] int8, corr[n/S] int32, scale[n/S] float, and for
// Q4_K/Q5_K mins[n/32] float (dmin * m), where S is the sub-block (32; 16 for Q6_K).
inline int64_t mini(int64_t a, int64_t b) {
    return a < b ? a : b;
}
constexpr int64_t kGroup = 16;     // tokens per packed group (lanes)
constexpr int64_t kRowBlock = 16;  // rows unpacked together; their tiles reuse an activation tile

size_t q8_0_group_bytes(int64_t n) {
    return size_t(n / 32) * (512 + 64);
}
size_t q8_k_group_bytes(int64_t n) {
    return size_t(n / 256) * (4096 + 64 + 512);
}

size_t pack_bytes_q8_0(int64_t n, int64_t nt) {
    return q8_0_group_bytes(n) * size_t((nt + kGroup - 1) / kGroup);
}
size_t pack_bytes_q8_k(int64_t n, int64_t nt) {
    return q8_k_group_bytes(n) * size_t((nt + kGroup - 1) / kGroup);
}

void pack_q8_0(int64_t n, const void* xv, size_t x_stride, int64_t nt, void* dst) {
    const int64_t nb = n / 32;
    const size_t gb = q8_0_group_bytes(n);
    for (int64_t g = 0; g * kGroup < nt; ++g) {
        uint8_t* d = static_cast<uint8_t*>(dst) + size_t(g) * gb;
        float* dx = reinterpret_cast<float*>(d + nb * 512);
        for (int64_t l = 0; l < kGroup; ++l) {
            const int64_t t = g * kGroup + l;
            if (t >= nt) {
                for (int64_t k = 0; k < nb * 8; ++k) __builtin_memset(d + k * 64 + 4 * l, 0x80, 4);
                for (int64_t b = 0; b < nb; ++b) dx[b * 16 + l] = 0;
                continue;
            }
            const uint8_t* x = static_cast<const uint8_t*>(xv) + size_t(t) * x_stride;
            for (int64_t b = 0; b < nb; ++b, x += Q8_0_BYTES) {
                dx[b * 16 + l] = ldh(x);
                for (int k = 0; k < 8; ++k) {
                    uint32_t v = ld32(x + 2 + 4 * k) ^ 0x80808080u;
                    __builtin_memcpy(d + (b * 8 + k) * 64 + 4 * l, &v, 4);
                }
            }
        }
    }
}

void pack_q8_k(int64_t n, const void* xv, size_t x_stride, int64_t nt, void* dst) {
    const int64_t nsb = n / 256;
    const size_t gb = q8_k_group_bytes(n);
    for (int64_t g = 0; g * kGroup < nt; ++g) {
        uint8_t* d = static_cast<uint8_t*>(dst) + size_t(g) * gb;
        float* dy = reinterpret_cast<float*>(d + nsb * 4096);
        float* bs = dy + nsb * 16;
        for (int64_t l = 0; l < kGroup; ++l) {
            const int64_t t = g * kGroup + l;
            if (t >= nt) {
                for (int64_t k = 0; k < nsb * 64; ++k)
                    __builtin_memset(d + k * 64 + 4 * l, 0x80, 4);
                for (int64_t i = 0; i < nsb; ++i) dy[i * 16 + l] = 0;
                for (int64_t i = 0; i < nsb * 8; ++i) bs[i * 16 + l] = 0;
                continue;
            }
            const uint8_t* x = static_cast<const uint8_t*>(xv) + size_t(t) * x_stride;
            for (int64_t i = 0; i < nsb; ++i, x += Q8_K_BYTES) {
                dy[i * 16 + l] = ldf(x);
                for (int k = 0; k < 64; ++k) {
                    uint32_t v = ld32(x + 4 + 4 * k) ^ 0x80808080u;
                    __builtin_memcpy(d + (i * 64 + k) * 64 + 4 * l, &v, 4);
                }
                for (int j = 0; j < 8; ++j) {
                    int16_t a, b;
                    __builtin_memcpy(&a, x + 260 + 4 * j, 2);
                    __builtin_memcpy(&b, x + 262 + 4 * j, 2);
                    bs[(i * 8 + j) * 16 + l] = float(int(a) + int(b));
                }
            }
        }
    }
}

// Sum of the bytes of each 8-byte lane (unsigned), then of n8 consecutive lanes.
inline int sum_u8(__m256i v) {
    const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
    alignas(32) uint64_t l[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), s);
    return int(l[0] + l[1] + l[2] + l[3]);
}

struct RowLayout {
    int64_t sub;  // elements per sub-block (scale)
    bool mins;    // Q4_K/Q5_K: dmin * m per 32
};

size_t row_bytes_unpacked(int64_t n, RowLayout L) {
    size_t b = size_t(n) + size_t(n / L.sub) * 8 + (L.mins ? size_t(n / 32) * 4 : 0);
    return (b + 63) / 64 * 64;
}

void unpack_q8_0(int64_t n, const uint8_t* w, uint8_t* d) {
    const int64_t nb = n / 32;
    int32_t* corr = reinterpret_cast<int32_t*>(d + n);
    float* scale = reinterpret_cast<float*>(d + n + 4 * nb);
    const __m256i bias = _mm256_set1_epi8(char(0x80));
    for (int64_t b = 0; b < nb; ++b, w += Q8_0_BYTES) {
        const __m256i q = load256(w + 2);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32 * b), q);
        const int s = sum_u8(_mm256_xor_si256(q, bias)) - 32 * 128;  // sum of the signed q
        corr[b] = -128 * s;
        scale[b] = ldh(w);
    }
}

void unpack_q4_0(int64_t n, const uint8_t* w, uint8_t* d) {
    const int64_t nb = n / 32;
    int32_t* corr = reinterpret_cast<int32_t*>(d + n);
    float* scale = reinterpret_cast<float*>(d + n + 4 * nb);
    const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; ++b, w += Q4_0_BYTES) {
        const __m128i raw = load128(w + 2);
        const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32 * b), _mm256_sub_epi8(u, eight));
        corr[b] = -128 * (sum_u8(u) - 8 * 32);
        scale[b] = ldh(w);
    }
}

template <bool Five>
void unpack_k45(int64_t n, const uint8_t* w, uint8_t* d) {
    const int64_t nsb = n / 256, bytes = Five ? Q5_K_BYTES : Q4_K_BYTES;
    int32_t* corr = reinterpret_cast<int32_t*>(d + n);
    float* scale = reinterpret_cast<float*>(d + n + 4 * (n / 32));
    float* mins = reinterpret_cast<float*>(d + n + 8 * (n / 32));
    const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nsb; ++i, w += bytes) {
        const float dd = ldh(w), dmin = ldh(w + 2);
        alignas(16) uint8_t sm[16];  // sc0..7, m0..7
        _mm_store_si128(reinterpret_cast<__m128i*>(sm),
                        _mm256_castsi256_si128(k_scales_mins(w + 4, w + 4)));
        const uint8_t* qs = w + (Five ? 48 : 16);
        const __m256i qh = Five ? load256(w + 16) : _mm256_setzero_si256();
        for (int g = 0; g < 4; ++g) {
            const __m256i raw = load256(qs + 32 * g);
            __m256i lo = _mm256_and_si256(raw, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if constexpr (Five) {
                // bit 2g (low nibbles) and 2g+1 (high) of each qh byte is the fifth bit
                const __m128i s0 = _mm_cvtsi32_si128(2 * g), s1 = _mm_cvtsi32_si128(2 * g + 1);
                lo = _mm256_or_si256(
                    lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s0), one), 4));
                hi = _mm256_or_si256(
                    hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s1), one), 4));
            }
            uint8_t* q = d + 256 * i + 64 * g;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), lo);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32), hi);
            corr[8 * i + 2 * g] = -128 * sum_u8(lo);
            corr[8 * i + 2 * g + 1] = -128 * sum_u8(hi);
        }
        for (int j = 0; j < 8; ++j) {
            scale[8 * i + j] = dd * float(sm[j]);
            mins[8 * i + j] = dmin * float(sm[8 + j]);
        }
    }
}

void unpack_q6_k(int64_t n, const uint8_t* w, uint8_t* d) {
    const int64_t nsb = n / 256;
    int32_t* corr = reinterpret_cast<int32_t*>(d + n);
    float* scale = reinterpret_cast<float*>(d + n + 4 * (n / 16));
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i off = _mm512_set1_epi8(32);
    const __m512i qh_shift = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    for (int64_t i = 0; i < nsb; ++i, w += Q6_K_BYTES) {
        const float dd = ldh(w + 208);
        for (int h = 0; h < 2; ++h) {
            // as in dot_q6_k: ua = elements 128h + 0..63, ub = 128h + 64..127, as q + 32
            const __m512i ql = load512(w + 64 * h);
            const __m512i t =
                _mm512_srlv_epi64(_mm512_broadcast_i64x4(load256(w + 128 + 32 * h)), qh_shift);
            const __m512i ua = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                               _mm512_and_si512(_mm512_slli_epi16(t, 4), m30));
            const __m512i ub = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                               _mm512_and_si512(t, m30));
            uint8_t* q = d + 256 * i + 128 * h;
            _mm512_storeu_si512(q, _mm512_sub_epi8(ua, off));
            _mm512_storeu_si512(q + 64, _mm512_sub_epi8(ub, off));
            alignas(64) uint64_t sa[8], sb[8];
            _mm512_store_si512(sa, _mm512_sad_epu8(ua, _mm512_setzero_si512()));
            _mm512_store_si512(sb, _mm512_sad_epu8(ub, _mm512_setzero_si512()));
            for (int j = 0; j < 4; ++j) {
                corr[16 * i + 8 * h + j] = -128 * (int(sa[2 * j] + sa[2 * j + 1]) - 16 * 32);
                corr[16 * i + 8 * h + 4 + j] = -128 * (int(sb[2 * j] + sb[2 * j + 1]) - 16 * 32);
            }
        }
        for (int j = 0; j < 16; ++j) scale[16 * i + j] = dd * float(int8_t(w[192 + j]));
    }
}

// One tile: R unpacked rows (row_bytes apart) x TV groups of 16 tokens (gb apart).
// res[r][v][lane]. Q8_0 activations: a scale per 32-element block and token.
template <int R, int TV>
void tile_q8_0(int64_t n, const uint8_t* wu, size_t wrb, const uint8_t* xg, size_t gb, float* res) {
    const int64_t nb = n / 32;
    __m512 acc[R][TV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < TV; ++v) acc[r][v] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512i is[R][TV];
        for (int r = 0; r < R; ++r) {
            int32_t c;
            __builtin_memcpy(&c, wu + r * wrb + n + 4 * b, 4);
            for (int v = 0; v < TV; ++v) is[r][v] = _mm512_set1_epi32(c);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            __m512i a[TV];
            for (int v = 0; v < TV; ++v) a[v] = load512(xg + v * gb + (b * 8 + k) * 64);
            for (int r = 0; r < R; ++r) {
                const __m512i wb = _mm512_set1_epi32(int(ld32(wu + r * wrb + 32 * b + 4 * k)));
                for (int v = 0; v < TV; ++v) is[r][v] = _mm512_dpbusd_epi32(is[r][v], a[v], wb);
            }
        }
        for (int v = 0; v < TV; ++v) {
            const __m512 dx = _mm512_loadu_ps(xg + v * gb + nb * 512 + b * 64);
            for (int r = 0; r < R; ++r) {
                const __m512 ds =
                    _mm512_mul_ps(dx, _mm512_set1_ps(ldf(wu + r * wrb + n + 4 * nb + 4 * b)));
                acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r][v]), ds, acc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < TV; ++v) _mm512_storeu_ps(res + (r * 2 + v) * 16, acc[r][v]);
}

// K-quants against Q8_K: sub-blocks of S elements with a float scale each, Q4_K/Q5_K mins
// against the activations' 32-element sums, one activation scale per 256.
template <int R, int TV, int S, bool Mins>
void tile_k(int64_t n, const uint8_t* wu, size_t wrb, const uint8_t* xg, size_t gb, float* res) {
    const int64_t nsb = n / 256, nsub = n / S;
    constexpr int SPB = 256 / S;  // sub-blocks per super-block
    const uint8_t* corr = wu + n;
    const uint8_t* scale = wu + n + 4 * nsub;
    const uint8_t* mins = wu + n + 8 * nsub;
    const uint8_t* dyp = xg + nsb * 4096;
    const uint8_t* bsp = dyp + nsb * 64;
    __m512 acc[R][TV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < TV; ++v) acc[r][v] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
        __m512 as[R][TV];
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < TV; ++v) as[r][v] = _mm512_setzero_ps();
        for (int j = 0; j < SPB; ++j) {
            const int64_t sub = i * SPB + j;
            __m512i is[R][TV];
            for (int r = 0; r < R; ++r) {
                int32_t c;
                __builtin_memcpy(&c, corr + r * wrb + 4 * sub, 4);
                for (int v = 0; v < TV; ++v) is[r][v] = _mm512_set1_epi32(c);
            }
#pragma GCC unroll 8
            for (int k = 0; k < S / 4; ++k) {
                const int64_t step = sub * (S / 4) + k;
                __m512i a[TV];
                for (int v = 0; v < TV; ++v) a[v] = load512(xg + v * gb + step * 64);
                for (int r = 0; r < R; ++r) {
                    const __m512i wb = _mm512_set1_epi32(int(ld32(wu + r * wrb + 4 * step)));
                    for (int v = 0; v < TV; ++v) is[r][v] = _mm512_dpbusd_epi32(is[r][v], a[v], wb);
                }
            }
            for (int r = 0; r < R; ++r) {
                const __m512 sc = _mm512_set1_ps(ldf(scale + r * wrb + 4 * sub));
                for (int v = 0; v < TV; ++v)
                    as[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r][v]), sc, as[r][v]);
            }
        }
        if constexpr (Mins) {
            for (int j = 0; j < 8; ++j) {
                __m512 bs[TV];
                for (int v = 0; v < TV; ++v)
                    bs[v] = _mm512_loadu_ps(bsp + v * gb + (i * 8 + j) * 64);
                for (int r = 0; r < R; ++r) {
                    const __m512 m = _mm512_set1_ps(ldf(mins + r * wrb + 4 * (i * 8 + j)));
                    for (int v = 0; v < TV; ++v) as[r][v] = _mm512_fnmadd_ps(bs[v], m, as[r][v]);
                }
            }
        }
        for (int v = 0; v < TV; ++v) {
            const __m512 dy = _mm512_loadu_ps(dyp + v * gb + i * 64);
            for (int r = 0; r < R; ++r) acc[r][v] = _mm512_fmadd_ps(as[r][v], dy, acc[r][v]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < TV; ++v) _mm512_storeu_ps(res + (r * 2 + v) * 16, acc[r][v]);
}

using UnpackFn = void (*)(int64_t n, const uint8_t* w, uint8_t* d);
using TileFn = void (*)(int64_t n, const uint8_t* wu, size_t wrb, const uint8_t* xg, size_t gb,
                        float* res);

// Tiles of up to 4 rows x 2 token groups: [rows - 1][groups - 1].
template <template <int, int> class K>
constexpr TileFn kTiles[4][2] = {{K<1, 1>::f, K<1, 2>::f},
                                 {K<2, 1>::f, K<2, 2>::f},
                                 {K<3, 1>::f, K<3, 2>::f},
                                 {K<4, 1>::f, K<4, 2>::f}};
template <int R, int TV>
struct TQ8_0 {
    static constexpr TileFn f = tile_q8_0<R, TV>;
};
template <int R, int TV>
struct TK45 {
    static constexpr TileFn f = tile_k<R, TV, 32, true>;
};
template <int R, int TV>
struct TQ6_K {
    static constexpr TileFn f = tile_k<R, TV, 16, false>;
};

// Rows in blocks of kRowBlock, unpacked once into scratch; for each pair of token groups
// every 4-row tile of the block runs, so the activation tile and the unpacked rows stay
// in the core's L2 while the tiles reuse them.
void gemm_rows(int64_t n, const uint8_t* w, size_t w_stride, int64_t nr, const uint8_t* xp,
               size_t gb, int64_t nt, float* out, size_t out_stride, uint8_t* scratch, RowLayout L,
               UnpackFn unpack, const TileFn (&tiles)[4][2]) {
    const size_t wrb = row_bytes_unpacked(n, L);
    const int64_t ng = (nt + kGroup - 1) / kGroup;
    alignas(64) float res[4 * 2 * 16];
    for (int64_t r0 = 0; r0 < nr; r0 += kRowBlock) {
        const int64_t rb = mini(kRowBlock, nr - r0);
        for (int64_t r = 0; r < rb; ++r)
            unpack(n, w + size_t(r0 + r) * w_stride, scratch + r * wrb);
        for (int64_t g = 0; g < ng; g += 2) {
            const int tv = int(mini(2, ng - g));
            for (int64_t rr = 0; rr < rb; rr += 4) {
                const int R = int(mini(4, rb - rr));
                tiles[R - 1][tv - 1](n, scratch + rr * wrb, wrb, xp + g * gb, gb, res);
                for (int r = 0; r < R; ++r)
                    for (int v = 0; v < tv; ++v) {
                        const int64_t t0 = (g + v) * kGroup;
                        const int64_t lanes = mini(kGroup, nt - t0);
                        for (int64_t l = 0; l < lanes; ++l)
                            out[size_t(t0 + l) * out_stride + size_t(r0 + rr + r)] =
                                res[(r * 2 + v) * 16 + l];
                    }
            }
        }
    }
}

size_t scratch_q8_0(int64_t n) {
    return kRowBlock * row_bytes_unpacked(n, {32, false});
}
size_t scratch_k45(int64_t n) {
    return kRowBlock * row_bytes_unpacked(n, {32, true});
}
size_t scratch_q6_k(int64_t n) {
    return kRowBlock * row_bytes_unpacked(n, {16, false});
}

template <UnpackFn Unpack>
void gemm_q8_0_like(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xp,
                    int64_t nt, float* out, size_t out_stride, void* scratch) {
    gemm_rows(n, static_cast<const uint8_t*>(w), w_stride, nr, static_cast<const uint8_t*>(xp),
              q8_0_group_bytes(n), nt, out, out_stride, static_cast<uint8_t*>(scratch), {32, false},
              Unpack, kTiles<TQ8_0>);
}
template <bool Five>
void gemm_k45(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xp, int64_t nt,
              float* out, size_t out_stride, void* scratch) {
    gemm_rows(n, static_cast<const uint8_t*>(w), w_stride, nr, static_cast<const uint8_t*>(xp),
              q8_k_group_bytes(n), nt, out, out_stride, static_cast<uint8_t*>(scratch), {32, true},
              unpack_k45<Five>, kTiles<TK45>);
}
void gemm_q6_k(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xp, int64_t nt,
               float* out, size_t out_stride, void* scratch) {
    gemm_rows(n, static_cast<const uint8_t*>(w), w_stride, nr, static_cast<const uint8_t*>(xp),
              q8_k_group_bytes(n), nt, out, out_stride, static_cast<uint8_t*>(scratch), {16, false},
              unpack_q6_k, kTiles<TQ6_K>);
}

constexpr Gemm kGemmQ8_0{kGroup, pack_bytes_q8_0, pack_q8_0, scratch_q8_0,
                         gemm_q8_0_like<unpack_q8_0>};
constexpr Gemm kGemmQ4_0{kGroup, pack_bytes_q8_0, pack_q8_0, scratch_q8_0,
                         gemm_q8_0_like<unpack_q4_0>};
constexpr Gemm kGemmQ4_K{kGroup, pack_bytes_q8_k, pack_q8_k, scratch_k45, gemm_k45<false>};
constexpr Gemm kGemmQ5_K{kGroup, pack_bytes_q8_k, pack_q8_k, scratch_k45, gemm_k45<true>};
constexpr Gemm kGemmQ6_K{kGroup, pack_bytes_q8_k, pack_q8_k, scratch_q6_k, gemm_q6_k};

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

const Gemm* avx512vnni_gemm(Type t) {
    switch (t) {
        case Type::Q8_0:
            return &kGemmQ8_0;
        case Type::Q4_0:
            return &kGemmQ4_0;
        case Type::Q4_K:
            return &kGemmQ4_K;
        case Type::Q5_K:
            return &kGemmQ5_K;
        case Type::Q6_K:
            return &kGemmQ6_K;
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
const Gemm* avx512vnni_gemm(Type) {
    return nullptr;
}
}  // namespace ragd::quant::detail

#endif
