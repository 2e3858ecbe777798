// generate/attention_kernels.h: the tiled attention of generate/attention.h, written once
// with GCC vector extensions. Each file that includes it defines RAGD_ATTN_W (floats per
// vector) and RAGD_ATTN_NAME (the kernel's name) and is compiled with its instruction
// set's flags: attention.cpp (baseline, W 4), attention_avx2.cpp (8), attention_avx512.cpp
// (16). Everything here has internal linkage and no std template is used, so no copy built
// for a wider instruction set can stand in for the baseline's at link time.
//
// Per KV head, for each key block (outer loop, so the block stays in cache while every
// row uses it) and each tile of R query rows:
//   scores  acc[R][kBlock / W] += q[r][d] * kT[d][...] over d: R x kBlock scores;
//   softmax in base 2 (scale folded with log2 e): running max m and sum l per row; the
//           block's weights p = 2^(s - m_new), the old output rescaled by 2^(m_old - m_new);
//   values  o[r][...] += p[r][j] * v[j][...] over the block's keys, in chunks of 4 vectors.
// Keys a row does not see (causal mask, or past the end of the written positions) are
// selected out as -inf before the exponential, so their contents never matter.
#pragma once

#ifndef RAGD_ATTN_W
#error "define RAGD_ATTN_W and RAGD_ATTN_NAME before including attention_kernels.h"
#endif

#include <cmath>  // INFINITY
#include <cstdint>

#include "generate/attention.h"

#if defined(__AVX2__) || defined(__AVX512F__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports at every use (GCC bug 105593, as in quant_avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#endif

namespace ragd::attention {
namespace {

constexpr int W = RAGD_ATTN_W;
constexpr int NV = kBlock / W;      // vectors per row of a key block
constexpr int R = W >= 16 ? 4 : 1;  // query rows per tile: R * NV score accumulators
constexpr int PC = 4;               // vectors per chunk of the value product

typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));

inline vf load(const float* p) {
    vf v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
inline void store(float* p, vf v) {
    __builtin_memcpy(p, &v, sizeof v);
}
// W int8 -> W floats. GCC 12 does not turn __builtin_convertvector from an int8 vector
// into a sign extension (it goes byte by byte through general registers, 6x slower), so
// the x86 widths use the instruction directly.
inline vf load_i8(const int8_t* p) {
    vf r;
#if RAGD_ATTN_W == 16 && defined(__AVX512F__)
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)));
    __builtin_memcpy(&r, &f, sizeof r);
#elif RAGD_ATTN_W == 8 && defined(__AVX2__)
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
    __builtin_memcpy(&r, &f, sizeof r);
#else
    for (int i = 0; i < W; ++i) r[i] = float(p[i]);
#endif
    return r;
}
inline vf splat(float x) {
    return vf{} + x;
}
inline vi lane_index() {
    vi v;
    for (int i = 0; i < W; ++i) v[i] = i;
    return v;
}

// 2^x for x <= 0; below -126 it gives 2^-126 (the callers mask what must be 0). x = n + f
// with n the nearest integer; 2^f = e^t, t = f ln 2 in [-0.35, 0.35], by a degree-6
// Taylor polynomial (relative error < 2e-7); 2^n goes into the exponent bits.
inline vf exp2v(vf x) {
    x = x < -126.0f ? splat(-126.0f) : x;
    const vf y = x + 0.5f;
    vi n = __builtin_convertvector(y, vi);        // truncates toward 0 ...
    n += vi(__builtin_convertvector(n, vf) > y);  // ... so step down where that rounded up
    const vf t = (x - __builtin_convertvector(n, vf)) * 0.69314718f;
    vf p = splat(1.0f / 720);
    p = p * t + 1.0f / 120;
    p = p * t + 1.0f / 24;
    p = p * t + 1.0f / 6;
    p = p * t + 0.5f;
    p = p * t + 1.0f;
    p = p * t + 1.0f;
    const vi bits = (n + 127) << 23;
    vf pow2n;
    __builtin_memcpy(&pow2n, &bits, sizeof pow2n);
    return p * pow2n;
}

inline float hmax(vf v) {
    float m = v[0];
    for (int i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
    return m;
}
inline float hsum(vf v) {
    float s = 0;
    for (int i = 0; i < W; ++i) s += v[i];
    return s;
}

struct State {
    const KvHead& kv;
    const Rows& rows;
    float c;   // scale * log2(e): scores in base 2
    float* o;  // rows.n x hd running outputs
    float* m;  // running max per row (base-2 scores)
    float* l;  // running sum of weights per row
    float* p;  // R x kBlock weights of the current tile
};

// Scores of rows [r, r + RR) against the key block at j0, then the online-softmax update:
// the tile's weights in st.p (times the value scales of an 8-bit cache) and each row's
// factor for its earlier output in alpha.
template <int RR, bool Q8>
void score_tile(State& st, int r, int64_t j0, float* alpha) {
    const KvHead& kv = st.kv;
    const size_t blk = key_index(kv.hd, j0, 0);
    const float* q[RR];
    for (int i = 0; i < RR; ++i) q[i] = st.rows.q[r + i];
    vf acc[RR][NV];
    for (int i = 0; i < RR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] = vf{};
    for (int d = 0; d < kv.hd; ++d) {
        const size_t at = blk + size_t(d) * kBlock;
        vf kd[NV];
        for (int v = 0; v < NV; ++v)
            kd[v] = Q8 ? load_i8(kv.k8 + at + v * W) : load(kv.k + at + v * W);
        for (int i = 0; i < RR; ++i) {
            const vf qd = splat(q[i][d]);
            for (int v = 0; v < NV; ++v) acc[i][v] += qd * kd[v];
        }
    }
    const vi lane = lane_index();
    const vf neg_inf = splat(-INFINITY), zero = vf{};
    for (int i = 0; i < RR; ++i) {
        const int64_t seen = st.rows.n_pos[r + i] - j0;  // keys [0, seen) of the block
        const int lim = int(seen < kBlock ? seen : kBlock);
        vf s[NV];
        float mx = -INFINITY;
        for (int v = 0; v < NV; ++v) {
            vf x = acc[i][v] * st.c;
            if (Q8) x *= load(kv.k_scale + j0 + v * W);
            s[v] = lane + v * W < lim ? x : neg_inf;
            const float hm = hmax(s[v]);
            mx = hm > mx ? hm : mx;
        }
        float& m = st.m[r + i];
        const float m_new = mx > m ? mx : m;
        alpha[i] = __builtin_exp2f(m - m_new);
        vf sum = vf{};
        for (int v = 0; v < NV; ++v) {
            const vi keep = lane + v * W < lim;
            vf e = keep ? exp2v(s[v] - m_new) : zero;
            sum += e;
            if (Q8) e = keep ? e * load(kv.v_scale + j0 + v * W) : zero;
            store(st.p + i * kBlock + v * W, e);
        }
        st.l[r + i] = st.l[r + i] * alpha[i] + hsum(sum);
        m = m_new;
    }
}

// o[r + i][d0 .. d0 + C * W) = alpha[i] * o + sum over the block's first bk keys of
// p[i][j] * value_j[d0 ..].
template <int RR, int C, bool Q8>
void value_chunk(State& st, int r, int64_t j0, int bk, int d0, const float* alpha) {
    const KvHead& kv = st.kv;
    const int hd = kv.hd;
    float* o = st.o + size_t(r) * hd + d0;
    vf acc[RR][C];
    for (int i = 0; i < RR; ++i)
        for (int c = 0; c < C; ++c) acc[i][c] = load(o + i * hd + c * W) * alpha[i];
    for (int j = 0; j < bk; ++j) {
        const size_t at = size_t(j0 + j) * hd + d0;
        vf vv[C];
        for (int c = 0; c < C; ++c)
            vv[c] = Q8 ? load_i8(kv.v8 + at + c * W) : load(kv.v + at + c * W);
        for (int i = 0; i < RR; ++i) {
            const vf pj = splat(st.p[i * kBlock + j]);
            for (int c = 0; c < C; ++c) acc[i][c] += pj * vv[c];
        }
    }
    for (int i = 0; i < RR; ++i)
        for (int c = 0; c < C; ++c) store(o + i * hd + c * W, acc[i][c]);
}

template <int RR, bool Q8>
void tile(State& st, int r, int64_t j0) {
    float alpha[RR];
    score_tile<RR, Q8>(st, r, j0, alpha);
    const int64_t seen = st.rows.n_pos[r + RR - 1] - j0;  // the tile's last row sees most
    const int bk = int(seen < kBlock ? seen : kBlock);
    int d0 = 0;
    for (; d0 + PC * W <= st.kv.hd; d0 += PC * W) value_chunk<RR, PC, Q8>(st, r, j0, bk, d0, alpha);
    for (; d0 < st.kv.hd; d0 += W) value_chunk<RR, 1, Q8>(st, r, j0, bk, d0, alpha);
}

template <int RR, bool Q8>
void tile_upto(State& st, int r, int rr, int64_t j0) {
    if constexpr (RR > 1) {
        if (rr < RR) return tile_upto<RR - 1, Q8>(st, r, rr, j0);
    }
    tile<RR, Q8>(st, r, j0);
}

template <bool Q8>
void attend_rows(const KvHead& kv, const Rows& rows, float scale, float* o, float* m, float* l,
                 float* p) {
    const int n = rows.n, hd = kv.hd;
    for (size_t i = 0; i < size_t(n) * hd; ++i) o[i] = 0;
    for (int r = 0; r < n; ++r) m[r] = -1e30f, l[r] = 0;
    State st{kv, rows, scale * 1.44269504f, o, m, l, p};
    const int64_t n_keys = rows.n_pos[n - 1];
    int first = 0;  // rows before it see nothing from this block on
    for (int64_t j0 = 0; j0 < n_keys; j0 += kBlock) {
        while (rows.n_pos[first] <= j0) ++first;
        for (int r = first; r < n; r += R) tile_upto<R, Q8>(st, r, n - r < R ? n - r : R, j0);
    }
    for (int r = 0; r < n; ++r) {
        const float inv = 1.0f / l[r];
        float* out = rows.out[r];
        for (int d = 0; d < hd; ++d) out[d] = o[size_t(r) * hd + d] * inv;
    }
}

}  // namespace

namespace detail {

// o: rows.n * hd floats, m and l: rows.n, p: 4 * kBlock (the caller's memory).
void RAGD_ATTN_NAME(const KvHead& kv, const Rows& rows, float scale, float* o, float* m, float* l,
                    float* p) {
    if (kv.k8)
        attend_rows<true>(kv, rows, scale, o, m, l, p);
    else
        attend_rows<false>(kv, rows, scale, o, m, l, p);
}

}  // namespace detail
}  // namespace ragd::attention
