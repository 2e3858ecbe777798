// generate/quant: conversions, block (de)quantization, scalar dot products and the run-time
// choice of SIMD kernels. The SIMD kernels live in quant_avx2.cpp / quant_avx512.cpp,
// compiled for their instruction sets; this file is compiled for the baseline and only
// calls into them after detected_isa() reports the level.
//
// Block fields are read and written through byte offsets and memcpy, never through
// struct pointers: weight rows sit at any 2-byte boundary in a mapped file, and
// activation buffers need not be aligned.
#include "generate/quant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "config/config.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define RAGD_QUANT_X86 1
#endif

namespace ragd::quant {

// SIMD kernels, defined in quant_avx2.cpp and quant_avx512.cpp. Each returns nullptr for a
// type it has no kernel for (and everywhere on a build without those instruction sets).
namespace detail {
VecDotFn avx2_vec_dot(Type t);
VecDotFn avx512_vec_dot(Type t);
VecDotFn avx512vnni_vec_dot(Type t);
const Gemm* avx512vnni_gemm(Type t);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
QuantizeFn avx2_quantize(Type t);    // activation formats only (Q8_0, Q8_K)
QuantizeFn avx512_quantize(Type t);  // activation formats only (Q8_0, Q8_K)
QuantizeFn scalar_quantize(Type t);  // the same in plain C++ (here; tests compare them)
}  // namespace detail

namespace {

// ---- block layouts (bytes) -------------------------------------------------------------
constexpr int QK = 32;    // Q8_0, Q4_0 block
constexpr int QKK = 256;  // K-quant super-block
constexpr size_t Q8_0_BYTES = 2 + 32;
constexpr size_t Q4_0_BYTES = 2 + 16;
constexpr size_t Q4_K_BYTES = 2 + 2 + 12 + 128;
constexpr size_t Q5_K_BYTES = 2 + 2 + 12 + 32 + 128;
constexpr size_t Q6_K_BYTES = 128 + 64 + 16 + 2;
constexpr size_t Q8_K_BYTES = 4 + 256 + 2 * 16;
// offsets inside the K blocks
constexpr size_t K_SCALES = 4, K4_QS = 16, K5_QH = 16, K5_QS = 48;
constexpr size_t K6_QH = 128, K6_SC = 192, K6_D = 208;
constexpr size_t K8_QS = 4, K8_BSUMS = 260;

inline uint16_t load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline void store_u16(uint8_t* p, uint16_t v) {
    std::memcpy(p, &v, 2);
}
inline float load_f32(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void store_f32(uint8_t* p, float v) {
    std::memcpy(p, &v, 4);
}
inline float load_h(const uint8_t* p) {
    return fp16_to_fp32(load_u16(p));
}
inline int16_t load_i16(const uint8_t* p) {
    int16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

int block_size(Type t) {
    switch (t) {
        case Type::F32:
        case Type::F16:
        case Type::BF16:
            return 1;
        case Type::Q8_0:
        case Type::Q4_0:
            return QK;
        case Type::Q4_K:
        case Type::Q5_K:
        case Type::Q6_K:
        case Type::Q8_K:
            return QKK;
        default:
            return 0;
    }
}

[[noreturn]] void unsupported(const char* what, Type t) {
    throw Error(Error::Code::Unsupported,
                std::string(what) + ": unsupported tensor type id " + std::to_string(uint32_t(t)));
}

// Checks that t is supported and n a non-negative multiple of its block; returns blocks.
int64_t check_row(const char* what, Type t, int64_t n) {
    int bs = block_size(t);
    if (bs == 0) unsupported(what, t);
    if (n < 0 || n % bs != 0)
        throw Error(Error::Code::InvalidArgument,
                    std::string(what) + ": row length " + std::to_string(n) +
                        " is not a multiple of the block size " + std::to_string(bs));
    return n / bs;
}

inline int nearest_int(float x) {
    return int(std::nearbyint(x));
}  // ties to even

// ---- K-quant sub-block scale packing ---------------------------------------------------
// Sub-block j's 6-bit scale and min from the 12 packed bytes.
inline void k_scale_min(int j, const uint8_t* s, int& sc, int& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}
inline void k_pack_scales(const int* sc, const int* m, uint8_t* s) {
    for (int j = 0; j < 4; ++j) {
        s[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = uint8_t(m[j] | ((m[j + 4] >> 4) << 6));
        s[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

// ---- dequantization --------------------------------------------------------------------
void dequant_q8_0(const uint8_t* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, b += Q8_0_BYTES, y += QK) {
        float d = load_h(b);
        for (int l = 0; l < QK; ++l) y[l] = d * float(int8_t(b[2 + l]));
    }
}

void dequant_q4_0(const uint8_t* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, b += Q4_0_BYTES, y += QK) {
        float d = load_h(b);
        const uint8_t* qs = b + 2;
        for (int l = 0; l < 16; ++l) {
            y[l] = d * float((qs[l] & 15) - 8);
            y[l + 16] = d * float((qs[l] >> 4) - 8);
        }
    }
}

// Q4_K and Q5_K share everything but the fifth bit (qh == nullptr for Q4_K).
void dequant_k45(const uint8_t* b, float* y, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    for (int64_t i = 0; i < nb; ++i, b += bytes, y += QKK) {
        float d = load_h(b), dmin = load_h(b + 2);
        const uint8_t* sc = b + K_SCALES;
        const uint8_t* qh = five ? b + K5_QH : nullptr;
        const uint8_t* qs = b + (five ? K5_QS : K4_QS);
        for (int g = 0; g < 4; ++g) {
            int s0, m0, s1, m1;
            k_scale_min(2 * g, sc, s0, m0);
            k_scale_min(2 * g + 1, sc, s1, m1);
            float d0 = d * float(s0), d1 = d * float(s1);
            float n0 = dmin * float(m0), n1 = dmin * float(m1);
            const uint8_t* q = qs + 32 * g;
            for (int l = 0; l < 32; ++l) {
                int lo = q[l] & 15, hi = q[l] >> 4;
                if (qh) {
                    lo |= ((qh[l] >> (2 * g)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
                }
                y[64 * g + l] = d0 * float(lo) - n0;
                y[64 * g + 32 + l] = d1 * float(hi) - n1;
            }
        }
    }
}

// The 256 signed 6-bit values of a Q6_K block, in element order, and its 16 scales.
inline void q6k_unpack(const uint8_t* b, int8_t* q) {
    for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = b + 64 * h;
        const uint8_t* qh = b + K6_QH + 32 * h;
        int8_t* y = q + 128 * h;
        for (int l = 0; l < 32; ++l) {
            y[l] = int8_t(((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32);
            y[l + 32] = int8_t(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

void dequant_q6_k(const uint8_t* b, float* y, int64_t nb) {
    int8_t q[QKK];
    for (int64_t i = 0; i < nb; ++i, b += Q6_K_BYTES, y += QKK) {
        float d = load_h(b + K6_D);
        q6k_unpack(b, q);
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + K6_SC);
        for (int l = 0; l < QKK; ++l) y[l] = d * float(sc[l / 16]) * float(q[l]);
    }
}

void dequant_q8_k(const uint8_t* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, b += Q8_K_BYTES, y += QKK) {
        float d = load_f32(b);
        for (int l = 0; l < QKK; ++l) y[l] = d * float(int8_t(b[K8_QS + l]));
    }
}

// ---- quantization ----------------------------------------------------------------------
float max_abs(const float* x, int n) {
    float a = 0;
    for (int l = 0; l < n; ++l) a = std::max(a, std::fabs(x[l]));
    return a;
}

void quant_q8_0(const float* x, uint8_t* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += QK, b += Q8_0_BYTES) {
        float d = max_abs(x, QK) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        store_u16(b, fp32_to_fp16(d));
        for (int l = 0; l < QK; ++l) b[2 + l] = uint8_t(int8_t(nearest_int(x[l] * id)));
    }
}

void quant_q4_0(const float* x, uint8_t* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += QK, b += Q4_0_BYTES) {
        // The value of largest magnitude maps to -8, so the full range -8..7 is used.
        float vmax = 0;
        for (int l = 0; l < QK; ++l)
            if (std::fabs(x[l]) > std::fabs(vmax)) vmax = x[l];
        float d = vmax / -8.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        store_u16(b, fp32_to_fp16(d));
        for (int l = 0; l < 16; ++l) {
            int lo = std::clamp(nearest_int(x[l] * id) + 8, 0, 15);
            int hi = std::clamp(nearest_int(x[l + 16] * id) + 8, 0, 15);
            b[2 + l] = uint8_t(lo | (hi << 4));
        }
    }
}

// Fits x ~= a*q + b with q in 0..nmax, a >= 0, b <= 0 (least squares, a few alternations of
// rounding and refitting). Returns a and -b (the "min", >= 0).
void fit_scale_min(const float* x, int n, int nmax, float& scale, float& min_out) {
    float lo = x[0], hi = x[0];
    for (int l = 1; l < n; ++l) lo = std::min(lo, x[l]), hi = std::max(hi, x[l]);
    lo = std::min(lo, 0.0f);
    if (hi <= lo) {
        scale = 0;
        min_out = -lo;
        return;
    }
    float a = (hi - lo) / float(nmax), b = lo;
    float best_a = a, best_b = b, best_err = INFINITY;
    for (int it = 0; it < 4; ++it) {
        double sq = 0, sq2 = 0, sx = 0, sqx = 0, err = 0;
        float ia = a > 0 ? 1.0f / a : 0.0f;
        for (int l = 0; l < n; ++l) {
            int q = std::clamp(nearest_int((x[l] - b) * ia), 0, nmax);
            float e = a * float(q) + b - x[l];
            err += double(e) * e;
            sq += q, sq2 += double(q) * q, sx += x[l], sqx += double(q) * x[l];
        }
        if (err < best_err) best_err = float(err), best_a = a, best_b = b;
        // refit a, b for these q
        double det = n * sq2 - sq * sq;
        if (det <= 0) break;
        double na = (n * sqx - sq * sx) / det;
        double nb = (sq2 * sx - sq * sqx) / det;
        if (nb > 0) {  // the offset must stay <= 0: refit the scale alone
            nb = 0;
            na = sq2 > 0 ? sqx / sq2 : 0;
        }
        if (na <= 0) break;
        a = float(na), b = float(nb);
    }
    scale = best_a;
    min_out = -best_b;
}

void quant_k45(const float* x, uint8_t* b, int64_t nb, bool five) {
    const size_t bytes = five ? Q5_K_BYTES : Q4_K_BYTES;
    const int nmax = five ? 31 : 15;
    for (int64_t i = 0; i < nb; ++i, x += QKK, b += bytes) {
        std::memset(b, 0, bytes);
        float scales[8], mins[8];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            fit_scale_min(x + 32 * j, 32, nmax, scales[j], mins[j]);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        // super-block scales, rounded to fp16 before the 6-bit sub-block scales are fitted
        float d = fp16_to_fp32(fp32_to_fp16(max_scale / 63.0f));
        float dmin = fp16_to_fp32(fp32_to_fp16(max_min / 63.0f));
        store_u16(b, fp32_to_fp16(d));
        store_u16(b + 2, fp32_to_fp16(dmin));
        int sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            sc[j] = d > 0 ? std::clamp(nearest_int(scales[j] / d), 0, 63) : 0;
            mn[j] = dmin > 0 ? std::clamp(nearest_int(mins[j] / dmin), 0, 63) : 0;
        }
        k_pack_scales(sc, mn, b + K_SCALES);
        uint8_t* qh = five ? b + K5_QH : nullptr;
        uint8_t* qs = b + (five ? K5_QS : K4_QS);
        for (int j = 0; j < 8; ++j) {
            float dj = d * float(sc[j]), mj = dmin * float(mn[j]);
            float idj = dj > 0 ? 1.0f / dj : 0.0f;
            int g = j / 2, hi = j & 1;
            for (int l = 0; l < 32; ++l) {
                int q = std::clamp(nearest_int((x[32 * j + l] + mj) * idj), 0, nmax);
                qs[32 * g + l] |= uint8_t((q & 15) << (4 * hi));
                if (qh) qh[l] |= uint8_t((q >> 4) << j);  // bit 2g for low, 2g+1 for high
            }
        }
    }
}

void quant_q6_k(const float* x, uint8_t* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += QKK, b += Q6_K_BYTES) {
        std::memset(b, 0, Q6_K_BYTES);
        // per 16: the value of largest magnitude maps to -32 (scale may be negative)
        float s[16];
        float smax = 0;
        for (int j = 0; j < 16; ++j) {
            float vmax = 0;
            for (int l = 0; l < 16; ++l)
                if (std::fabs(x[16 * j + l]) > std::fabs(vmax)) vmax = x[16 * j + l];
            s[j] = vmax / -32.0f;
            smax = std::max(smax, std::fabs(s[j]));
        }
        float d = fp16_to_fp32(fp32_to_fp16(smax / 127.0f));
        store_u16(b + K6_D, fp32_to_fp16(d));
        int8_t q[QKK];
        for (int j = 0; j < 16; ++j) {
            int sc = d > 0 ? std::clamp(nearest_int(s[j] / d), -127, 127) : 0;
            b[K6_SC + j] = uint8_t(int8_t(sc));
            float ds = d * float(sc);
            float ids = ds != 0 ? 1.0f / ds : 0.0f;
            for (int l = 0; l < 16; ++l)
                q[16 * j + l] = int8_t(std::clamp(nearest_int(x[16 * j + l] * ids), -32, 31));
        }
        for (int h = 0; h < 2; ++h) {
            uint8_t* ql = b + 64 * h;
            uint8_t* qh = b + K6_QH + 32 * h;
            const int8_t* y = q + 128 * h;
            for (int l = 0; l < 32; ++l) {
                int q1 = y[l] + 32, q2 = y[l + 32] + 32, q3 = y[l + 64] + 32, q4 = y[l + 96] + 32;
                ql[l] = uint8_t((q1 & 15) | ((q3 & 15) << 4));
                ql[l + 32] = uint8_t((q2 & 15) | ((q4 & 15) << 4));
                qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

void quant_q8_k(const float* x, uint8_t* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += QKK, b += Q8_K_BYTES) {
        float d = max_abs(x, QKK) / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        store_f32(b, d);
        for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) {
                int q = nearest_int(x[16 * j + l] * id);
                b[K8_QS + 16 * j + l] = uint8_t(int8_t(q));
                sum += q;
            }
            int16_t s = int16_t(sum);
            std::memcpy(b + K8_BSUMS + 2 * j, &s, 2);
        }
    }
}

// ---- scalar dot products ---------------------------------------------------------------
// Integer sums per block, then one float scaling per block; blocks summed in double.
float dot_q8_0_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    double sum = 0;
    for (int64_t i = 0; i < n / QK; ++i, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        int isum = 0;
        for (int l = 0; l < QK; ++l) isum += int(int8_t(w[2 + l])) * int(int8_t(x[2 + l]));
        sum += load_h(w) * load_h(x) * float(isum);
    }
    return float(sum);
}

float dot_q4_0_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    double sum = 0;
    for (int64_t i = 0; i < n / QK; ++i, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        int isum = 0;
        for (int l = 0; l < 16; ++l) {
            isum += ((w[2 + l] & 15) - 8) * int(int8_t(x[2 + l]));
            isum += ((w[2 + l] >> 4) - 8) * int(int8_t(x[2 + 16 + l]));
        }
        sum += load_h(w) * load_h(x) * float(isum);
    }
    return float(sum);
}

// Q4_K / Q5_K against Q8_K: sum_j sc_j * (q . y)_j scaled by d*dy, minus dmin*dy*sum_j m_j *
// (sum of y over sub-block j), the latter from the activation's bsums.
template <bool Five>
float dot_k45_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    const size_t bytes = Five ? Q5_K_BYTES : Q4_K_BYTES;
    double sum = 0;
    for (int64_t i = 0; i < n / QKK; ++i, w += bytes, x += Q8_K_BYTES) {
        const uint8_t* qs = w + (Five ? K5_QS : K4_QS);
        const uint8_t* qh = w + K5_QH;
        const int8_t* y = reinterpret_cast<const int8_t*>(x + K8_QS);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            k_scale_min(j, w + K_SCALES, sc, m);
            const uint8_t* q = qs + 32 * (j / 2);
            int shift = 4 * (j & 1);
            int isum = 0;
            for (int l = 0; l < 32; ++l) {
                int v = (q[l] >> shift) & 15;
                if (Five) v |= ((qh[l] >> j) & 1) << 4;
                isum += v * y[32 * j + l];
            }
            sumi += sc * isum;
            summ += m * (load_i16(x + K8_BSUMS + 4 * j) + load_i16(x + K8_BSUMS + 4 * j + 2));
        }
        float dy = load_f32(x);
        sum += load_h(w) * dy * float(sumi) - load_h(w + 2) * dy * float(summ);
    }
    return float(sum);
}

float dot_q6_k_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    double sum = 0;
    int8_t q[QKK];
    for (int64_t i = 0; i < n / QKK; ++i, w += Q6_K_BYTES, x += Q8_K_BYTES) {
        q6k_unpack(w, q);
        const int8_t* sc = reinterpret_cast<const int8_t*>(w + K6_SC);
        const int8_t* y = reinterpret_cast<const int8_t*>(x + K8_QS);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            int isum = 0;
            for (int l = 0; l < 16; ++l) isum += q[16 * j + l] * y[16 * j + l];
            sumi += sc[j] * isum;
        }
        sum += load_h(w + K6_D) * load_f32(x) * float(sumi);
    }
    return float(sum);
}

float dot_f32_scalar(int64_t n, const void* wv, const void* xv) {
    const float* w = static_cast<const float*>(wv);
    const float* x = static_cast<const float*>(xv);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(w[i]) * x[i];
    return float(sum);
}

float dot_f16_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const float* x = static_cast<const float*>(xv);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(load_h(w + 2 * i)) * x[i];
    return float(sum);
}

float dot_bf16_scalar(int64_t n, const void* wv, const void* xv) {
    const uint8_t* w = static_cast<const uint8_t*>(wv);
    const float* x = static_cast<const float*>(xv);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(bf16_to_fp32(load_u16(w + 2 * i))) * x[i];
    return float(sum);
}

VecDotFn scalar_vec_dot(Type t) {
    switch (t) {
        case Type::F32:
            return dot_f32_scalar;
        case Type::F16:
            return dot_f16_scalar;
        case Type::BF16:
            return dot_bf16_scalar;
        case Type::Q8_0:
            return dot_q8_0_scalar;
        case Type::Q4_0:
            return dot_q4_0_scalar;
        case Type::Q4_K:
            return dot_k45_scalar<false>;
        case Type::Q5_K:
            return dot_k45_scalar<true>;
        case Type::Q6_K:
            return dot_q6_k_scalar;
        default:
            return nullptr;
    }
}

// ---- scalar GEMM: the loop of scalar vec_dots over rows and tokens ---------------------
// "Packing" copies the activation rows next to each other.
size_t xrow_bytes(int64_t n, Type t) {
    return gguf::row_bytes(vec_dot_type(t), n);
}

template <Type T>
const Gemm* scalar_gemm_of() {
    static const Gemm g{
        1, [](int64_t n, int64_t nt) { return xrow_bytes(n, T) * size_t(nt); },
        [](int64_t n, const void* x, size_t x_stride, int64_t nt, void* dst) {
            const size_t rb = xrow_bytes(n, T);
            for (int64_t t = 0; t < nt; ++t)
                std::memcpy(static_cast<uint8_t*>(dst) + size_t(t) * rb,
                            static_cast<const uint8_t*>(x) + size_t(t) * x_stride, rb);
        },
        [](int64_t) { return size_t(0); },
        [](int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xp, int64_t nt,
           float* out, size_t out_stride, void*) {
            const VecDotFn dot = scalar_vec_dot(T);
            const size_t rb = xrow_bytes(n, T);
            for (int64_t r = 0; r < nr; ++r)
                for (int64_t t = 0; t < nt; ++t)
                    out[size_t(t) * out_stride + size_t(r)] =
                        dot(n, static_cast<const uint8_t*>(w) + size_t(r) * w_stride,
                            static_cast<const uint8_t*>(xp) + size_t(t) * rb);
        }};
    return &g;
}

const Gemm* scalar_gemm(Type t) {
    switch (t) {
        case Type::F32:
            return scalar_gemm_of<Type::F32>();
        case Type::F16:
            return scalar_gemm_of<Type::F16>();
        case Type::BF16:
            return scalar_gemm_of<Type::BF16>();
        case Type::Q8_0:
            return scalar_gemm_of<Type::Q8_0>();
        case Type::Q4_0:
            return scalar_gemm_of<Type::Q4_0>();
        case Type::Q4_K:
            return scalar_gemm_of<Type::Q4_K>();
        case Type::Q5_K:
            return scalar_gemm_of<Type::Q5_K>();
        case Type::Q6_K:
            return scalar_gemm_of<Type::Q6_K>();
        default:
            return nullptr;
    }
}

// ---- CPU features ----------------------------------------------------------------------
Isa detect() {
#ifdef RAGD_QUANT_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Scalar;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
               f16c = c & (1u << 29);
    if (!(osxsave && avx)) return Isa::Scalar;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 0x6) != 0x6) return Isa::Scalar;  // the OS saves XMM and YMM state
    if (__get_cpuid_max(0, nullptr) < 7) return Isa::Scalar;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5), f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30),
               vl = b & (1u << 31), vnni = c & (1u << 11);
    if (!(avx2 && fma && f16c)) return Isa::Scalar;
    // AVX-512 also needs the OS to save opmask and ZMM state (XCR0 bits 5..7)
    if (!(f && bw && vl && dq) || (xlo & 0xE0) != 0xE0) return Isa::AVX2;
    return vnni ? Isa::AVX512_VNNI : Isa::AVX512;
#else
    return Isa::Scalar;
#endif
}

}  // namespace

detail::QuantizeFn detail::scalar_quantize(Type t) {
    switch (t) {
        case Type::Q8_0:
            return [](const float* src, void* dst, int64_t n) {
                quant_q8_0(src, static_cast<uint8_t*>(dst), n / QK);
            };
        case Type::Q8_K:
            return [](const float* src, void* dst, int64_t n) {
                quant_q8_k(src, static_cast<uint8_t*>(dst), n / QKK);
            };
        default:
            return nullptr;
    }
}

// ---- conversions -----------------------------------------------------------------------
float fp16_to_fp32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 31, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);  // inf, NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal: exact in float
        float v = float(man) * 0x1p-24f;
        std::memcpy(&bits, &v, 4);
        bits |= sign;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t fp32_to_fp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) {  // inf or NaN
        if (x == 0x7f800000u) return sign | 0x7c00;
        return uint16_t(sign | 0x7e00 | ((x >> 13) & 0x3ff));  // quiet, high payload kept
    }
    if (x >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to inf
    if (x >= 0x38800000u) {                      // normal half (>= 2^-14)
        uint32_t r = x - (112u << 23);
        uint32_t q = r >> 13, rem = r & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;
        return uint16_t(sign | q);
    }
    if (x < 0x33000000u) return sign;  // below 2^-25 (half of the smallest subnormal)
    // subnormal half: value / 2^-24, rounded to nearest even (may carry into 0x400)
    uint32_t e = x >> 23, m = (x & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return uint16_t(sign | q);
}

float bf16_to_fp32(uint16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t fp32_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1);
    return uint16_t(x >> 16);
}

// ---- rows ------------------------------------------------------------------------------
void dequantize_row(Type t, const void* src, float* dst, int64_t n) {
    const int64_t nb = check_row("dequantize_row", t, n);
    const uint8_t* s = static_cast<const uint8_t*>(src);
    switch (t) {
        case Type::F32:
            std::memcpy(dst, src, size_t(n) * 4);
            return;
        case Type::F16:
            for (int64_t i = 0; i < n; ++i) dst[i] = load_h(s + 2 * i);
            return;
        case Type::BF16:
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(s + 2 * i));
            return;
        case Type::Q8_0:
            return dequant_q8_0(s, dst, nb);
        case Type::Q4_0:
            return dequant_q4_0(s, dst, nb);
        case Type::Q4_K:
            return dequant_k45(s, dst, nb, false);
        case Type::Q5_K:
            return dequant_k45(s, dst, nb, true);
        case Type::Q6_K:
            return dequant_q6_k(s, dst, nb);
        case Type::Q8_K:
            return dequant_q8_k(s, dst, nb);
        default:
            unsupported("dequantize_row", t);
    }
}

void quantize_row(Type t, const float* src, void* dst, int64_t n) {
    const int64_t nb = check_row("quantize_row", t, n);
    uint8_t* d = static_cast<uint8_t*>(dst);
    if (t == Type::Q8_0 || t == Type::Q8_K) {
        // activations: the SIMD quantizers give the same bytes as the scalar ones
        static const detail::QuantizeFn q8_0 = [] {
            Isa isa = detected_isa();
            if (isa >= Isa::AVX512) return detail::avx512_quantize(Type::Q8_0);
            if (isa >= Isa::AVX2) return detail::avx2_quantize(Type::Q8_0);
            return detail::QuantizeFn(nullptr);
        }();
        static const detail::QuantizeFn q8_k = [] {
            Isa isa = detected_isa();
            if (isa >= Isa::AVX512) return detail::avx512_quantize(Type::Q8_K);
            if (isa >= Isa::AVX2) return detail::avx2_quantize(Type::Q8_K);
            return detail::QuantizeFn(nullptr);
        }();
        detail::QuantizeFn fn = t == Type::Q8_0 ? q8_0 : q8_k;
        if (fn) return fn(src, dst, n);
    }
    switch (t) {
        case Type::F32:
            std::memcpy(dst, src, size_t(n) * 4);
            return;
        case Type::F16:
            for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, fp32_to_fp16(src[i]));
            return;
        case Type::BF16:
            for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, fp32_to_bf16(src[i]));
            return;
        case Type::Q8_0:
            return quant_q8_0(src, d, nb);
        case Type::Q4_0:
            return quant_q4_0(src, d, nb);
        case Type::Q4_K:
            return quant_k45(src, d, nb, false);
        case Type::Q5_K:
            return quant_k45(src, d, nb, true);
        case Type::Q6_K:
            return quant_q6_k(src, d, nb);
        case Type::Q8_K:
            return quant_q8_k(src, d, nb);
        default:
            unsupported("quantize_row", t);
    }
}

Type vec_dot_type(Type t) {
    switch (t) {
        case Type::F32:
        case Type::F16:
        case Type::BF16:
            return Type::F32;
        case Type::Q8_0:
        case Type::Q4_0:
            return Type::Q8_0;
        case Type::Q4_K:
        case Type::Q5_K:
        case Type::Q6_K:
            return Type::Q8_K;
        default:
            unsupported("vec_dot_type", t);
    }
}

// ---- dispatch --------------------------------------------------------------------------
Isa detected_isa() {
    static const Isa isa = detect();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar:
            return "scalar";
        case Isa::AVX2:
            return "avx2";
        case Isa::AVX512:
            return "avx512";
        case Isa::AVX512_VNNI:
            return "avx512vnni";
    }
    return "unknown";
}

VecDotFn vec_dot_kernel(Type t, Isa isa) {
    // never hand out a kernel the CPU cannot run
    if (isa > detected_isa()) return nullptr;
    switch (isa) {
        case Isa::Scalar:
            return scalar_vec_dot(t);
        case Isa::AVX2:
            return detail::avx2_vec_dot(t);
        case Isa::AVX512:
            return detail::avx512_vec_dot(t);
        case Isa::AVX512_VNNI:
            return detail::avx512vnni_vec_dot(t);
    }
    return nullptr;
}

const Gemm* gemm_kernel(Type t, Isa isa) {
    if (isa > detected_isa()) return nullptr;
    switch (isa) {
        case Isa::Scalar:
            return scalar_gemm(t);
        case Isa::AVX2:
        case Isa::AVX512:
            return nullptr;
        case Isa::AVX512_VNNI:
            return detail::avx512vnni_gemm(t);
    }
    return nullptr;
}

const Gemm* gemm_fn(Type t) {
    return detected_isa() >= Isa::AVX512_VNNI ? detail::avx512vnni_gemm(t) : nullptr;
}

VecDotFn vec_dot_fn(Type t) {
    static const auto table = [] {
        std::array<VecDotFn, 32> fns{};
        for (uint32_t id = 0; id < fns.size(); ++id) {
            for (int level = int(detected_isa()); level >= 0 && !fns[id]; --level)
                fns[id] = vec_dot_kernel(Type(id), Isa(level));
        }
        return fns;
    }();
    uint32_t id = uint32_t(t);
    return id < table.size() ? table[id] : nullptr;
}

}  // namespace ragd::quant
