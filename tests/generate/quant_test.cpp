// Weight formats and dot products: conversions, hand-built blocks, quantization error,
// scalar kernels against dequantized dots, every SIMD kernel against the scalar one.
#include "generate/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"

namespace ragd::quant {

// The SIMD activation quantizers (quant_avx2.cpp, quant_avx512.cpp), called directly here to
// test each level; the engine reaches them only through quantize_row.
namespace detail {
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
QuantizeFn avx2_quantize(Type t);
QuantizeFn avx512_quantize(Type t);
QuantizeFn scalar_quantize(Type t);
}  // namespace detail

namespace {

// Block sizes and bytes, written here from the spec so these tests do not depend on gguf.cpp.
struct Layout {
    Type t;
    int block;
    size_t bytes;
};
constexpr Layout kLayouts[] = {
    {Type::F32, 1, 4},      {Type::F16, 1, 2},      {Type::BF16, 1, 2},
    {Type::Q8_0, 32, 34},   {Type::Q4_0, 32, 18},   {Type::Q4_K, 256, 144},
    {Type::Q5_K, 256, 176}, {Type::Q6_K, 256, 210}, {Type::Q8_K, 256, 292},
};
const Layout& layout(Type t) {
    for (const auto& l : kLayouts)
        if (l.t == t) return l;
    throw std::logic_error("no layout");
}
size_t rbytes(Type t, int64_t n) {
    return size_t(n / layout(t).block) * layout(t).bytes;
}
std::string tname(Type t) {
    switch (t) {
        case Type::F32:
            return "F32";
        case Type::F16:
            return "F16";
        case Type::BF16:
            return "BF16";
        case Type::Q8_0:
            return "Q8_0";
        case Type::Q4_0:
            return "Q4_0";
        case Type::Q4_K:
            return "Q4_K";
        case Type::Q5_K:
            return "Q5_K";
        case Type::Q6_K:
            return "Q6_K";
        case Type::Q8_K:
            return "Q8_K";
        default:
            return "?";
    }
}

const Type kWeightTypes[] = {Type::F32,  Type::F16,  Type::BF16, Type::Q8_0,
                             Type::Q4_0, Type::Q4_K, Type::Q5_K, Type::Q6_K};

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
void put_u16(uint8_t* p, uint16_t v) {
    std::memcpy(p, &v, 2);
}
void put_f32(uint8_t* p, float v) {
    std::memcpy(p, &v, 4);
}

// ---- fp16 / bf16 -----------------------------------------------------------------------

// The value of a half from its definition.
double half_value(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v = exp == 0 ? std::ldexp(man, -24) : std::ldexp(1024 + man, exp - 25);
    return sign ? -v : v;
}

// Nearest half to |f| (finite), ties to the even mantissa, by search over the half values.
uint16_t reference_to_half(float f) {
    uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    double a = std::fabs(double(f));
    if (a >= 65520.0) return sign | 0x7c00;
    uint16_t lo = 0, hi = 0x7bff;  // largest half <= a
    while (lo < hi) {
        uint16_t mid = uint16_t((lo + hi + 1) / 2);
        if (half_value(mid) <= a)
            lo = mid;
        else
            hi = uint16_t(mid - 1);
    }
    if (lo == 0x7bff) return sign | lo;  // 65504 <= a < 65520
    double below = half_value(lo), above = half_value(uint16_t(lo + 1));
    uint16_t r;
    if (a - below < above - a)
        r = lo;
    else if (a - below > above - a)
        r = uint16_t(lo + 1);
    else
        r = (lo & 1) ? uint16_t(lo + 1) : lo;
    return sign | r;
}

TEST(QuantFp16, ToFp32MatchesDefinitionForAll65536) {
    for (uint32_t h = 0; h < 65536; ++h) {
        float f = fp16_to_fp32(uint16_t(h));
        bool nan = ((h >> 10) & 31) == 31 && (h & 1023) != 0;
        if (nan) {
            EXPECT_TRUE(std::isnan(f)) << h;
            EXPECT_EQ(std::signbit(f), (h >> 15) != 0) << h;
        } else if (((h >> 10) & 31) == 31) {
            EXPECT_TRUE(std::isinf(f)) << h;
            EXPECT_EQ(f < 0, (h >> 15) != 0) << h;
        } else {
            EXPECT_EQ(double(f), half_value(uint16_t(h))) << h;
            EXPECT_EQ(std::signbit(f), (h >> 15) != 0) << h;  // -0 stays -0
        }
    }
}

TEST(QuantFp16, RoundTripAll65536) {
    for (uint32_t h = 0; h < 65536; ++h) {
        uint16_t back = fp32_to_fp16(fp16_to_fp32(uint16_t(h)));
        bool nan = ((h >> 10) & 31) == 31 && (h & 1023) != 0;
        if (nan) {
            EXPECT_TRUE(((back >> 10) & 31) == 31 && (back & 1023) != 0) << h;  // still NaN
            EXPECT_EQ(back & 0x8000, h & 0x8000) << h;
        } else {
            ASSERT_EQ(back, h);
        }
    }
}

TEST(QuantFp16, RoundsToNearestEvenAtEveryMidpoint) {
    // For every pair of adjacent finite halves: the exact midpoint (representable in
    // float) goes to the even one, one float ulp either side goes to the nearer one.
    for (uint16_t h = 0; h < 0x7bff; ++h) {
        double mid = (half_value(h) + half_value(uint16_t(h + 1))) / 2;
        float m = float(mid);
        ASSERT_EQ(double(m), mid);
        uint16_t even = (h & 1) ? uint16_t(h + 1) : h;
        EXPECT_EQ(fp32_to_fp16(m), even) << h;
        EXPECT_EQ(fp32_to_fp16(-m), even | 0x8000) << h;
        EXPECT_EQ(fp32_to_fp16(std::nextafter(m, 0.0f)), h) << h;
        EXPECT_EQ(fp32_to_fp16(std::nextafter(m, INFINITY)), uint16_t(h + 1)) << h;
    }
}

TEST(QuantFp16, EdgeCases) {
    EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
    uint16_t n = fp32_to_fp16(NAN);
    EXPECT_EQ(n & 0x7c00, 0x7c00);
    EXPECT_NE(n & 0x3ff, 0);
    EXPECT_EQ(fp32_to_fp16(from_bits(0x7f800001)) & 0x7e00, 0x7e00);  // sNaN -> quiet NaN
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // the midpoint to 65536 rounds to inf
    EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);         // smallest subnormal
    EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);         // half of it: tie to even (0)
    EXPECT_EQ(fp32_to_fp16(0x1.000002p-25f), 0x0001);  // just above the tie
    EXPECT_EQ(fp32_to_fp16(0x3p-25f), 0x0002);         // 1.5 units: tie to even (2)
    EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);         // smallest normal
    EXPECT_EQ(fp32_to_fp16(0x1.ff8p-15f), 0x03ff);     // largest subnormal
    EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f), 0x0400);     // its midpoint to 2^-14 -> even
    EXPECT_EQ(fp32_to_fp16(0x1.ffbp-15f), 0x03ff);     // just below the midpoint
    EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(from_bits(1)), 0x0000);  // float subnormal
    EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
    EXPECT_EQ(fp32_to_fp16(-2.5f), 0xc100);
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);  // tie -> even
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x3p-11f), 0x3c02);  // tie -> even (up)
}

TEST(QuantFp16, RandomFloatsMatchReference) {
    std::mt19937 rng(7);
    for (int i = 0; i < 300000; ++i) {
        float f = from_bits(rng());
        if (std::isnan(f) || std::isinf(f)) continue;
        ASSERT_EQ(fp32_to_fp16(f), reference_to_half(f)) << f;
    }
    // and values in the half range, where the rounding matters
    std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
    std::uniform_real_distribution<float> e(-30.0f, 17.0f);
    for (int i = 0; i < 300000; ++i) {
        float f = i % 2 ? u(rng) : std::exp2(e(rng)) * (rng() % 2 ? 1 : -1);
        ASSERT_EQ(fp32_to_fp16(f), reference_to_half(f)) << f;
    }
}

TEST(QuantBf16, RoundTripAll65536AndRounding) {
    for (uint32_t h = 0; h < 65536; ++h) {
        float f = bf16_to_fp32(uint16_t(h));
        EXPECT_EQ(bits_of(f), h << 16);
        uint16_t back = fp32_to_bf16(f);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(bf16_to_fp32(back))) << h;
            EXPECT_EQ(back & 0x8000, h & 0x8000);
            continue;
        }
        ASSERT_EQ(back, h);
        if ((h & 0x7fff) >= 0x7f80) continue;  // inf: no midpoint above
        // midpoint to the next bf16 (towards larger magnitude): ties to even
        uint32_t mid = (h << 16) | 0x8000;
        uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
        ASSERT_EQ(fp32_to_bf16(from_bits(mid)), even) << h;
        ASSERT_EQ(fp32_to_bf16(from_bits(mid - 1)), h) << h;
        ASSERT_EQ(fp32_to_bf16(from_bits(mid + 1)), uint16_t(h + 1)) << h;
    }
    EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
    EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xff80);
    EXPECT_EQ(fp32_to_bf16(3.4028235e38f), 0x7f80);  // FLT_MAX rounds up to inf
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(from_bits(0x7f800001)))));  // sNaN
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(from_bits(0x7fffffff)))));  // no carry
}

// ---- hand-built blocks -----------------------------------------------------------------

TEST(QuantBlocks, Q8_0) {
    uint8_t b[34];
    put_u16(b, 0x3800);                                                    // 0.5
    for (int l = 0; l < 32; ++l) b[2 + l] = uint8_t(int8_t(l * 8 - 128));  // -128 .. 120
    float y[32];
    dequantize_row(Type::Q8_0, b, y, 32);
    EXPECT_EQ(y[0], -64.0f);
    EXPECT_EQ(y[16], 0.0f);
    EXPECT_EQ(y[31], 60.0f);
    for (int l = 0; l < 32; ++l) EXPECT_EQ(y[l], 0.5f * float(l * 8 - 128));
}

TEST(QuantBlocks, Q4_0) {
    uint8_t b[2 * 18];
    put_u16(b, 0x3400);       // 0.25
    put_u16(b + 18, 0xc000);  // -2
    for (int l = 0; l < 16; ++l) {
        b[2 + l] = uint8_t(l | ((15 - l) << 4));
        b[20 + l] = 0x9f;  // low 15, high 9
    }
    float y[64];
    dequantize_row(Type::Q4_0, b, y, 64);
    EXPECT_EQ(y[0], -2.0f);    // 0.25 * (0 - 8)
    EXPECT_EQ(y[15], 1.75f);   // 0.25 * (15 - 8)
    EXPECT_EQ(y[16], 1.75f);   // high nibble of qs[0] = 15
    EXPECT_EQ(y[31], -2.0f);   // high nibble of qs[15] = 0
    EXPECT_EQ(y[32], -14.0f);  // -2 * (15 - 8)
    EXPECT_EQ(y[48], -2.0f);   // -2 * (9 - 8)
}

// Scales and mins of the hand-built K blocks, and their 12 packed bytes, worked out by hand
// from the packing rule (j < 4: 6 bits in bytes j / j+4, top 2 bits of j+4's in bits 6-7;
// j >= 4: low 4 bits in byte j+4's nibbles).
const int kSc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
const int kMin[8] = {0, 5, 10, 63, 16, 32, 48, 7};
const uint8_t kPacked[12] = {65, 130, 195, 196, 64, 133, 202, 63, 1, 1, 2, 127};

TEST(QuantBlocks, Q4_K) {
    uint8_t b[144] = {};
    put_u16(b, 0x3c00);      // d = 1
    put_u16(b + 2, 0x3800);  // dmin = 0.5
    std::memcpy(b + 4, kPacked, 12);
    for (int i = 0; i < 128; ++i) b[16 + i] = uint8_t(i * 7 + 3);
    float y[256];
    dequantize_row(Type::Q4_K, b, y, 256);
    // element 0: group 0 low nibble of qs[0] = 3, sub-block 0: 1*1*3 - 0.5*0
    EXPECT_EQ(y[0], 3.0f);
    // element 32: high nibble of qs[0] = 0, sub-block 1 (sc 2, m 5): 0 - 2.5
    EXPECT_EQ(y[32], -2.5f);
    // element 100: group 1, l = 36 - 32 = 4 high: qs[36] = 255 -> 15; sub-block 3 (4, 63)
    EXPECT_EQ(y[100], 4.0f * 15 - 31.5f);
    // element 200: group 3, l = 8 low: qs[104] = 731 & 255 = 219 -> low 11; sub-block 6
    EXPECT_EQ(y[200], 50.0f * 11 - 24.0f);
    // element 255: group 3 high, qs[127] = 892 & 255 = 124 -> high 7; sub-block 7 (63, 7)
    EXPECT_EQ(y[255], 63.0f * 7 - 3.5f);
    for (int e = 0; e < 256; ++e) {
        int g = e / 64, r = e % 64, l = r % 32, hi = r / 32, j = 2 * g + hi;
        int q = hi ? b[16 + 32 * g + l] >> 4 : b[16 + 32 * g + l] & 15;
        EXPECT_EQ(y[e], 1.0f * kSc[j] * q - 0.5f * kMin[j]) << e;
    }
}

TEST(QuantBlocks, Q5_K) {
    uint8_t b[176] = {};
    put_u16(b, 0x3800);      // d = 0.5
    put_u16(b + 2, 0x3c00);  // dmin = 1
    std::memcpy(b + 4, kPacked, 12);
    for (int l = 0; l < 32; ++l) b[16 + l] = uint8_t(l * 37 + 11);  // qh
    for (int i = 0; i < 128; ++i) b[48 + i] = uint8_t(i * 5 + 1);   // qs
    float y[256];
    dequantize_row(Type::Q5_K, b, y, 256);
    // element 0: qs[0] = 1 low -> 1; qh[0] = 11 = 0b1011, bit 0 set -> +16 = 17; sub 0
    EXPECT_EQ(y[0], 0.5f * 1 * 17 - 0.0f);
    // element 32: qs[0] high -> 0; qh[0] bit 1 set -> 16; sub-block 1 (2, 5)
    EXPECT_EQ(y[32], 0.5f * 2 * 16 - 5.0f);
    // element 64: group 1 low, qs[32] = 161 -> low 1; qh[0] bit 2 clear -> 1; sub 2 (3, 10)
    EXPECT_EQ(y[64], 0.5f * 3 * 1 - 10.0f);
    // element 96: group 1 high, qs[32] = 161 -> high 10; qh[0] bit 3 set -> 26; sub 3 (4, 63)
    EXPECT_EQ(y[96], 0.5f * 4 * 26 - 63.0f);
    for (int e = 0; e < 256; ++e) {
        int g = e / 64, r = e % 64, l = r % 32, hi = r / 32, j = 2 * g + hi;
        int q = hi ? b[48 + 32 * g + l] >> 4 : b[48 + 32 * g + l] & 15;
        q |= ((b[16 + l] >> j) & 1) << 4;
        EXPECT_EQ(y[e], 0.5f * kSc[j] * q - 1.0f * kMin[j]) << e;
    }
}

TEST(QuantBlocks, Q6_K) {
    uint8_t b[210] = {};
    for (int i = 0; i < 128; ++i) b[i] = uint8_t(i * 13 + 5);       // ql
    for (int i = 0; i < 64; ++i) b[128 + i] = uint8_t(i * 29 + 7);  // qh
    const int8_t sc[16] = {1, -1, 2, -2, 127, -128, 3, 5, 7, 9, -11, 13, 0, 4, -6, 8};
    std::memcpy(b + 192, sc, 16);
    put_u16(b + 208, 0x3400);  // d = 0.25
    float y[256];
    dequantize_row(Type::Q6_K, b, y, 256);
    // element 0: ql[0] = 5 low 5, qh[0] = 7 bits 0-1 = 3 -> 5 | 48 = 53 - 32 = 21; scale 1
    EXPECT_EQ(y[0], 0.25f * 1 * 21);
    // element 32: ql[32] = 421 & 255 = 165 low 5; qh[0] bits 2-3 = 1 -> 21 - 32 = -11;
    // scale index 2 -> 2
    EXPECT_EQ(y[32], 0.25f * 2 * -11);
    // element 64: ql[0] high 0; qh[0] bits 4-5 = 0 -> -32; scale index 4 -> 127
    EXPECT_EQ(y[64], 0.25f * 127 * -32);
    // element 96: ql[32] high 10; qh[0] bits 6-7 = 0 -> -22; scale index 6 -> 3
    EXPECT_EQ(y[96], 0.25f * 3 * -22);
    for (int e = 0; e < 256; ++e) {
        int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
        const uint8_t* ql = b + 64 * h;
        const uint8_t* qh = b + 128 + 32 * h;
        int lowbits = quarter % 2 ? ql[l + 32] : ql[l];
        lowbits = quarter >= 2 ? lowbits >> 4 : lowbits & 15;
        int q = (lowbits | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
        int s = sc[8 * h + l / 16 + 2 * quarter];
        EXPECT_EQ(y[e], 0.25f * s * q) << e;
    }
}

TEST(QuantBlocks, Q8_K) {
    uint8_t b[292] = {};
    put_f32(b, 0.125f);
    for (int l = 0; l < 256; ++l) b[4 + l] = uint8_t(l);
    float y[256];
    dequantize_row(Type::Q8_K, b, y, 256);
    EXPECT_EQ(y[1], 0.125f);
    EXPECT_EQ(y[127], 0.125f * 127);
    EXPECT_EQ(y[128], 0.125f * -128);
    EXPECT_EQ(y[255], -0.125f);
}

TEST(QuantBlocks, FloatRows) {
    float x[4] = {1.5f, -2.0f, 65504.0f, 1e-8f}, y[4];
    uint8_t h[8];
    quantize_row(Type::F16, x, h, 4);
    dequantize_row(Type::F16, h, y, 4);
    EXPECT_EQ(y[0], 1.5f);
    EXPECT_EQ(y[2], 65504.0f);
    EXPECT_EQ(y[3], fp16_to_fp32(fp32_to_fp16(1e-8f)));
    quantize_row(Type::BF16, x, h, 4);
    dequantize_row(Type::BF16, h, y, 4);
    EXPECT_EQ(y[1], -2.0f);
    EXPECT_EQ(y[2], 65536.0f);
    quantize_row(Type::F32, x, h, 2);
    dequantize_row(Type::F32, h, y, 2);
    EXPECT_EQ(y[1], -2.0f);
}

TEST(QuantRows, RejectsBadLengthsAndTypes) {
    float x[64] = {};
    uint8_t b[512];
    EXPECT_THROW(quantize_row(Type::Q8_0, x, b, 33), Error);
    EXPECT_THROW(dequantize_row(Type::Q4_K, b, x, 32), Error);
    EXPECT_THROW(quantize_row(Type::Q2_K, x, b, 256), Error);
    EXPECT_THROW(vec_dot_type(Type::Q4_1), Error);
    EXPECT_EQ(vec_dot_fn(Type::Q4_1), nullptr);
}

TEST(QuantRows, VecDotTypes) {
    EXPECT_EQ(vec_dot_type(Type::F32), Type::F32);
    EXPECT_EQ(vec_dot_type(Type::F16), Type::F32);
    EXPECT_EQ(vec_dot_type(Type::BF16), Type::F32);
    EXPECT_EQ(vec_dot_type(Type::Q8_0), Type::Q8_0);
    EXPECT_EQ(vec_dot_type(Type::Q4_0), Type::Q8_0);
    EXPECT_EQ(vec_dot_type(Type::Q4_K), Type::Q8_K);
    EXPECT_EQ(vec_dot_type(Type::Q5_K), Type::Q8_K);
    EXPECT_EQ(vec_dot_type(Type::Q6_K), Type::Q8_K);
}

// ---- quantization error ----------------------------------------------------------------

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, sigma);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = g(rng);
    return x;
}

// RMS of dequantize(quantize(x)) - x, relative to the RMS of x.
double relative_rms_error(Type t, const std::vector<float>& x) {
    int64_t n = int64_t(x.size());
    std::vector<uint8_t> q(rbytes(t, n));
    std::vector<float> y(x.size());
    quantize_row(t, x.data(), q.data(), n);
    dequantize_row(t, q.data(), y.data(), n);
    double e = 0, s = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        e += double(y[i] - x[i]) * (y[i] - x[i]);
        s += double(x[i]) * x[i];
    }
    return std::sqrt(e / s);
}

TEST(QuantRoundTrip, RmsErrorWithinBounds) {
    // Bounds for N(0, 1) data, about 1.2x what these quantizers measure [in brackets];
    // for reference, a uniform grid of 2^b levels over a block's range (~4.1 sigma for 32
    // values) gives (4.1 / (2^b - 1)) / sqrt(12): 0.079 for 4 bits, 0.038 for 5.
    struct Bound {
        Type t;
        double max_rel_rms;
    } bounds[] = {
        {Type::F32, 0.0},      {Type::F16, 2.6e-4},  // [2.1e-4]
        {Type::BF16, 2.0e-3},                        // [1.7e-3]
        {Type::Q8_0, 6.5e-3},                        // [5.4e-3]
        {Type::Q8_K, 8.5e-3},                        // [7.0e-3]
        {Type::Q6_K, 2.3e-2},                        // [1.9e-2]
        {Type::Q5_K, 4.4e-2},                        // [3.7e-2]
        {Type::Q4_K, 9.0e-2},                        // [7.4e-2]
        {Type::Q4_0, 1.05e-1},                       // [8.6e-2]
    };
    for (auto [t, bound] : bounds) {
        std::vector<float> x = gaussian(16384, 11);
        double err = relative_rms_error(t, x);
        EXPECT_LE(err, bound) << tname(t);
        // scale-free: the same relative error at sigma 1e-3 and 50 (fp16 scale range)
        for (float sigma : {1e-3f, 50.0f}) {
            std::vector<float> xs = gaussian(4096, 12, sigma);
            EXPECT_LE(relative_rms_error(t, xs), bound * 1.1) << tname(t) << " sigma " << sigma;
        }
        RecordProperty("rms_" + tname(t), std::to_string(err));
        std::printf("  %-5s relative RMS error %.3g (bound %.3g)\n", tname(t).c_str(), err, bound);
    }
}

TEST(QuantRoundTrip, ZerosConstantsAndOutliers) {
    for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::Q8_K}) {
        std::vector<float> z(512, 0.0f), y(512, 1.0f);
        std::vector<uint8_t> q(rbytes(t, 512));
        quantize_row(t, z.data(), q.data(), 512);
        dequantize_row(t, q.data(), y.data(), 512);
        for (float v : y) ASSERT_EQ(v, 0.0f) << tname(t);
        // all-positive and all-negative constant blocks come back close
        for (float c : {0.75f, -3.0f}) {
            std::vector<float> k(512, c);
            quantize_row(t, k.data(), q.data(), 512);
            dequantize_row(t, q.data(), y.data(), 512);
            for (float v : y) ASSERT_NEAR(v, c, std::fabs(c) * 0.07) << tname(t) << " " << c;
        }
        // one outlier per block: the others still within the outlier's step
        std::vector<float> x = gaussian(512, 5);
        for (size_t i = 0; i < x.size(); i += 32) x[i] = 40.0f;
        quantize_row(t, x.data(), q.data(), 512);
        dequantize_row(t, q.data(), y.data(), 512);
        int nmax = t == Type::Q4_0 || t == Type::Q4_K ? 15 : t == Type::Q5_K ? 31 : 63;
        if (t == Type::Q8_0 || t == Type::Q8_K) nmax = 254;
        for (size_t i = 0; i < x.size(); ++i)
            ASSERT_NEAR(y[i], x[i], 44.0 / nmax * 1.1) << tname(t) << " " << i;
    }
}

// Checks the Q8_0 and Q8_K bytes of the activation row x against the spec of the activation
// quantizers: d = max|x| / 127, q = round-to-nearest-even(x * (1/d)), bsums of each 16.
void check_activation_bytes(const std::vector<float>& x, const std::vector<uint8_t>& q8,
                            const std::vector<uint8_t>& qk, const std::string& who) {
    const int n = int(x.size());
    for (int b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int l = 0; l < 32; ++l) amax = std::max(amax, std::fabs(x[size_t(32 * b + l)]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t dh;
        std::memcpy(&dh, &q8[size_t(34 * b)], 2);
        ASSERT_EQ(dh, fp32_to_fp16(d)) << who << " block " << b;
        for (int l = 0; l < 32; ++l)
            ASSERT_EQ(int8_t(q8[size_t(34 * b + 2 + l)]),
                      int(std::nearbyint(x[size_t(32 * b + l)] * id)))
                << who << " block " << b << " " << l;
    }
    for (int b = 0; b < n / 256; ++b) {
        const uint8_t* p = &qk[size_t(292 * b)];
        float amax = 0;
        for (int l = 0; l < 256; ++l) amax = std::max(amax, std::fabs(x[size_t(256 * b + l)]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f, got;
        std::memcpy(&got, p, 4);
        ASSERT_EQ(got, d) << who;
        for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) {
                int q = int(std::nearbyint(x[size_t(256 * b + 16 * j + l)] * id));
                ASSERT_EQ(int8_t(p[4 + 16 * j + l]), q) << who << " " << b << " " << j << " " << l;
                sum += q;
            }
            int16_t bs;
            std::memcpy(&bs, p + 260 + 2 * j, 2);
            ASSERT_EQ(bs, sum) << who;
        }
    }
}

std::vector<float> activation_row() {
    std::vector<float> x = gaussian(4096, 3);
    for (int i = 2048; i < 2048 + 256; ++i) x[size_t(i)] = 0.0f;  // an all-zero block
    // block 0: max 127, so d = 1 and the halves are exact ties (to even: 0.5 -> 0, 1.5 -> 2)
    x[0] = 127.0f;
    for (int l = 1; l < 32; ++l) x[size_t(l)] = float(l - 16) + 0.5f;
    return x;
}

TEST(QuantRoundTrip, ActivationQuantizersFollowTheSpec) {
    // quantize_row, with whatever SIMD quantizer this CPU gets
    std::vector<float> x = activation_row();
    std::vector<uint8_t> q8(rbytes(Type::Q8_0, 4096)), qk(rbytes(Type::Q8_K, 4096));
    quantize_row(Type::Q8_0, x.data(), q8.data(), 4096);
    quantize_row(Type::Q8_K, x.data(), qk.data(), 4096);
    EXPECT_EQ(int8_t(q8[2 + 16]), 0);   // 0.5 -> 0
    EXPECT_EQ(int8_t(q8[2 + 17]), 2);   // 1.5 -> 2
    EXPECT_EQ(int8_t(q8[2 + 15]), 0);   // -0.5 -> -0
    EXPECT_EQ(int8_t(q8[2 + 14]), -2);  // -1.5 -> -2
    check_activation_bytes(x, q8, qk, "quantize_row");
}

TEST(QuantRoundTrip, EveryActivationQuantizerFollowsTheSpec) {
    // each level's quantizer directly (quantize_row uses only the best one)
    std::vector<float> x = activation_row();
    struct Level {
        Isa isa;
        detail::QuantizeFn (*get)(Type);
    } levels[] = {{Isa::Scalar, detail::scalar_quantize},
                  {Isa::AVX2, detail::avx2_quantize},
                  {Isa::AVX512, detail::avx512_quantize}};
    for (auto [isa, get] : levels) {
        if (isa > detected_isa()) {
            std::printf("  [skipped] %s: this CPU lacks it\n", isa_name(isa));
            continue;
        }
        std::vector<uint8_t> q8(rbytes(Type::Q8_0, 4096)), qk(rbytes(Type::Q8_K, 4096));
        ASSERT_NE(get(Type::Q8_0), nullptr);
        ASSERT_NE(get(Type::Q8_K), nullptr);
        get(Type::Q8_0)(x.data(), q8.data(), 4096);
        get(Type::Q8_K)(x.data(), qk.data(), 4096);
        check_activation_bytes(x, q8, qk, isa_name(isa));
    }
}

// ---- dot products ----------------------------------------------------------------------

// Reference: dot of the dequantized rows in double, and sum of |w||x| for the tolerance.
void reference_dot(Type t, int64_t n, const void* w, const void* x, double& dot, double& mag) {
    std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
    dequantize_row(t, w, wf.data(), n);
    dequantize_row(vec_dot_type(t), x, xf.data(), n);
    dot = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
        dot += double(wf[size_t(i)]) * xf[size_t(i)];
        mag += std::fabs(double(wf[size_t(i)]) * xf[size_t(i)]);
    }
}

struct Rows {
    std::vector<uint8_t> w, x;
};

Rows quantized_rows(Type t, int64_t n, uint32_t seed) {
    Rows r;
    std::vector<float> wf = gaussian(n, seed), xf = gaussian(n, seed + 1000, 3.0f);
    r.w.resize(rbytes(t, n));
    r.x.resize(rbytes(vec_dot_type(t), n));
    quantize_row(t, wf.data(), r.w.data(), n);
    quantize_row(vec_dot_type(t), xf.data(), r.x.data(), n);
    return r;
}

// A random finite fp16 scale, from tiny (subnormal) to huge.
uint16_t random_scale(std::mt19937& rng, bool extreme) {
    if (extreme) {
        const uint16_t picks[] = {0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x0000, 0x3c00, 0x5bff};
        return picks[rng() % 8];
    }
    std::uniform_real_distribution<float> e(-16.0f, 8.0f);
    float v = std::exp2(e(rng)) * (rng() % 4 == 0 ? -1.0f : 1.0f);
    return fp32_to_fp16(v);
}

// Random bytes for every quant, with finite fp16 (or float) scales; Q8_K bsums consistent.
Rows random_rows(Type t, int64_t n, uint32_t seed, bool extreme) {
    std::mt19937 rng(seed);
    Rows r;
    r.w.resize(rbytes(t, n));
    Type xt = vec_dot_type(t);
    r.x.resize(rbytes(xt, n));
    if (t == Type::F32 || t == Type::F16 || t == Type::BF16) {
        std::vector<float> wf = gaussian(n, seed), xf = gaussian(n, seed + 1);
        if (extreme)
            for (size_t i = 0; i < wf.size(); i += 7) wf[i] *= 1000.0f;
        quantize_row(t, wf.data(), r.w.data(), n);
        std::memcpy(r.x.data(), xf.data(), r.x.size());
        return r;
    }
    for (auto& b : r.w) b = uint8_t(rng());
    for (auto& b : r.x) b = uint8_t(rng());
    const size_t wb = layout(t).bytes;
    for (size_t off = 0; off < r.w.size(); off += wb) {
        if (t == Type::Q6_K) {
            put_u16(&r.w[off + 208], random_scale(rng, extreme));
        } else {
            put_u16(&r.w[off], random_scale(rng, extreme));
            if (t == Type::Q4_K || t == Type::Q5_K)
                put_u16(&r.w[off + 2], random_scale(rng, extreme));
        }
    }
    if (xt == Type::Q8_0) {
        for (size_t off = 0; off < r.x.size(); off += 34)
            put_u16(&r.x[off], random_scale(rng, false));
    } else {
        std::uniform_real_distribution<float> e(-12.0f, 8.0f);
        for (size_t off = 0; off < r.x.size(); off += 292) {
            put_f32(&r.x[off], std::exp2(e(rng)));
            for (int j = 0; j < 16; ++j) {
                int s = 0;
                for (int l = 0; l < 16; ++l) s += int8_t(r.x[off + 4 + 16 * j + l]);
                int16_t s16 = int16_t(s);
                std::memcpy(&r.x[off + 260 + 2 * j], &s16, 2);
            }
        }
    }
    return r;
}

std::vector<int64_t> lengths_for(Type t) {
    if (layout(t).block == 256) return {256, 512, 768, 4096, 14336};  // 768: an odd block
    if (layout(t).block == 32) return {32, 64, 96, 160, 1024, 4096, 14336};
    return {1, 7, 17, 63, 100, 256, 4096, 14336};  // float rows: SIMD tails too
}

TEST(QuantDot, ScalarMatchesDequantizedDot) {
    // |scalar - sum(deq(w) deq(x))| <= 1e-5 * sum |deq(w) deq(x)|: the integer sums are
    // exact; what differs is float rounding of the per-block scaling.
    for (Type t : kWeightTypes) {
        VecDotFn f = vec_dot_kernel(t, Isa::Scalar);
        ASSERT_NE(f, nullptr) << tname(t);
        for (int64_t n : lengths_for(t)) {
            for (int variant = 0; variant < 3; ++variant) {
                Rows r = variant == 0 ? quantized_rows(t, n, uint32_t(n))
                                      : random_rows(t, n, uint32_t(n + variant), variant == 2);
                double ref, mag;
                reference_dot(t, n, r.w.data(), r.x.data(), ref, mag);
                double got = f(n, r.w.data(), r.x.data());
                EXPECT_LE(std::fabs(got - ref), 1e-5 * mag + 1e-30)
                    << tname(t) << " n=" << n << " variant " << variant << " got " << got << " ref "
                    << ref;
            }
        }
    }
}

TEST(QuantDot, QuantizedDotApproximatesFloatDot) {
    // End to end: quantized weights and activations against the float dot product.
    for (Type t : kWeightTypes) {
        const int64_t n = 4096;
        std::vector<float> wf = gaussian(n, 1), xf = gaussian(n, 2);
        std::vector<uint8_t> w(rbytes(t, n)), x(rbytes(vec_dot_type(t), n));
        quantize_row(t, wf.data(), w.data(), n);
        quantize_row(vec_dot_type(t), xf.data(), x.data(), n);
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
            exact += double(wf[size_t(i)]) * xf[size_t(i)];
            mag += std::fabs(double(wf[size_t(i)]) * xf[size_t(i)]);
        }
        EXPECT_NEAR(vec_dot(t, n, w.data(), x.data()), exact, 0.05 * mag) << tname(t);
    }
}

TEST(QuantDot, DispatchAndLevels) {
    Isa best = detected_isa();
    std::printf("  detected ISA: %s\n", isa_name(best));
    EXPECT_STREQ(isa_name(Isa::Scalar), "scalar");
    EXPECT_STREQ(isa_name(Isa::AVX512_VNNI), "avx512vnni");
    for (Type t : kWeightTypes) {
        VecDotFn f = vec_dot_fn(t);
        ASSERT_NE(f, nullptr) << tname(t);
        // the chosen kernel is the one of the highest level that has one
        VecDotFn expect = nullptr;
        for (int l = int(best); l >= 0 && !expect; --l) expect = vec_dot_kernel(t, Isa(l));
        EXPECT_EQ(f, expect) << tname(t);
        for (int l = int(best) + 1; l <= int(Isa::AVX512_VNNI); ++l)
            EXPECT_EQ(vec_dot_kernel(t, Isa(l)), nullptr) << "level the CPU lacks";
    }
}

TEST(QuantDot, SimdMatchesScalar) {
    // Every SIMD kernel against the scalar one, on random blocks (random bytes, finite
    // scales, some extreme). The integer sums are exact in both; the per-block float scaling
    // and its summation order differ, so |simd - scalar| <= 1e-6 * sum |w x| (float kernels:
    // 2e-6, as each SIMD lane accumulates in float).
    const Isa best = detected_isa();
    for (int level = int(Isa::AVX2); level <= int(Isa::AVX512_VNNI); ++level) {
        Isa isa = Isa(level);
        if (isa > best) {
            std::printf("  [skipped] %s: this CPU lacks it\n", isa_name(isa));
            continue;
        }
        int tested = 0;
        double worst = 0;
        for (Type t : kWeightTypes) {
            VecDotFn simd = vec_dot_kernel(t, isa), scalar = vec_dot_kernel(t, Isa::Scalar);
            if (!simd) continue;
            ++tested;
            bool flt = t == Type::F32 || t == Type::F16 || t == Type::BF16;
            double tol = flt ? 2e-6 : 1e-6;
            for (int64_t n : lengths_for(t)) {
                for (int rep = 0; rep < 5; ++rep) {
                    Rows r = rep == 3 ? quantized_rows(t, n, uint32_t(rep + n))
                                      : random_rows(t, n, uint32_t(97 * n + rep), rep == 2);
                    // rep 4: the rows at addresses aligned to no more than the element:
                    // quantized rows at odd addresses (a K-quant row is not a multiple of
                    // 64 bytes), float rows 4 bytes past a 64-byte boundary
                    const size_t wo = flt ? 4 : 1, xo = flt ? 4 : 3;
                    std::vector<uint8_t> wbuf(r.w.size() + 64 + wo), xbuf(r.x.size() + 64 + xo);
                    const uint8_t *wp = r.w.data(), *xp = r.x.data();
                    if (rep == 4) {
                        uint8_t* wa = wbuf.data() + (64 - uintptr_t(wbuf.data()) % 64) % 64 + wo;
                        uint8_t* xa = xbuf.data() + (64 - uintptr_t(xbuf.data()) % 64) % 64 + xo;
                        std::memcpy(wa, r.w.data(), r.w.size());
                        std::memcpy(xa, r.x.data(), r.x.size());
                        wp = wa;
                        xp = xa;
                    }
                    double ref, mag;
                    reference_dot(t, n, wp, xp, ref, mag);
                    double a = simd(n, wp, xp);
                    double b = scalar(n, wp, xp);
                    ASSERT_TRUE(std::isfinite(a)) << tname(t);
                    EXPECT_LE(std::fabs(a - b), tol * mag + 1e-30)
                        << isa_name(isa) << " " << tname(t) << " n=" << n << " rep " << rep
                        << ": simd " << a << " scalar " << b;
                    if (mag > 0) worst = std::max(worst, std::fabs(a - b) / mag);
                }
            }
        }
        std::printf("  %s: %d kernels, worst |simd-scalar| / sum|wx| = %.3g\n", isa_name(isa),
                    tested, worst);
        // AVX2 has every kernel; AVX512 all but F32 (which uses AVX2's); VNNI only the
        // integer ones (the float types use the lower levels' kernels there)
        const int expected = isa == Isa::AVX2 ? 8 : isa == Isa::AVX512 ? 7 : 5;
        EXPECT_EQ(tested, expected) << isa_name(isa) << " lacks kernels";
    }
}

TEST(QuantDot, SimdMatchesScalarAtExtremeBytes) {
    // The integer paths at their limits: every weight byte but the block scales one of
    // 0xFF (the largest quants, sub-block scales and mins), 0x80, 0x7F, 0x00, against
    // activations all -128, all 127 or alternating (bsums consistent), block scales 1.
    // Tolerance as in SimdMatchesScalar: 1e-6 * sum |w x|.
    const Isa best = detected_isa();
    const uint8_t fills[] = {0xFF, 0x80, 0x7F, 0x00};
    for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q5_K, Type::Q6_K}) {
        const Type xt = vec_dot_type(t);
        const int64_t n = 768;  // K-quants: a pair of blocks and an odd one
        const size_t wb = layout(t).bytes, xb = layout(xt).bytes;
        for (uint8_t fill : fills) {
            for (int xmode = 0; xmode < 3; ++xmode) {
                Rows r;
                r.w.assign(rbytes(t, n), fill);
                r.x.resize(rbytes(xt, n));
                for (size_t off = 0; off < r.w.size(); off += wb) {
                    if (t == Type::Q6_K) {
                        put_u16(&r.w[off + 208], 0x3c00);
                    } else {
                        put_u16(&r.w[off], 0x3c00);
                        if (t == Type::Q4_K || t == Type::Q5_K) put_u16(&r.w[off + 2], 0x3c00);
                    }
                }
                const size_t qoff = xt == Type::Q8_0 ? 2 : 4, nq = xt == Type::Q8_0 ? 32 : 256;
                for (size_t off = 0; off < r.x.size(); off += xb) {
                    if (xt == Type::Q8_0)
                        put_u16(&r.x[off], 0x3c00);
                    else
                        put_f32(&r.x[off], 1.0f);
                    for (size_t l = 0; l < nq; ++l) {
                        int v = xmode == 0 ? -128 : xmode == 1 ? 127 : (l % 2 ? 127 : -128);
                        r.x[off + qoff + l] = uint8_t(int8_t(v));
                    }
                    if (xt == Type::Q8_K)
                        for (int j = 0; j < 16; ++j) {
                            int sum = 0;
                            for (int l = 0; l < 16; ++l) sum += int8_t(r.x[off + 4 + 16 * j + l]);
                            int16_t s16 = int16_t(sum);
                            std::memcpy(&r.x[off + 260 + 2 * j], &s16, 2);
                        }
                }
                double ref, mag;
                reference_dot(t, n, r.w.data(), r.x.data(), ref, mag);
                const double b = vec_dot_kernel(t, Isa::Scalar)(n, r.w.data(), r.x.data());
                for (int level = int(Isa::AVX2); level <= int(best); ++level) {
                    VecDotFn simd = vec_dot_kernel(t, Isa(level));
                    if (!simd) continue;
                    const double a = simd(n, r.w.data(), r.x.data());
                    EXPECT_LE(std::fabs(a - b), 1e-6 * mag + 1e-30)
                        << isa_name(Isa(level)) << " " << tname(t) << " fill " << int(fill)
                        << " x mode " << xmode << ": simd " << a << " scalar " << b;
                }
            }
        }
    }
}

TEST(QuantGemm, ScalarIsTheLoopOfScalarDots) {
    // The scalar GEMM is the reference the blocked ones are held to: bit for bit the
    // scalar vec_dot of every (row, token).
    for (Type t : kWeightTypes) {
        const Gemm* g = gemm_kernel(t, Isa::Scalar);
        ASSERT_NE(g, nullptr) << tname(t);
        const int64_t n = layout(t).block == 1 ? 64 : 2 * layout(t).block, nr = 3, nt = 5;
        std::vector<uint8_t> w, x;
        for (int64_t r = 0; r < nr; ++r) {
            Rows a = random_rows(t, n, uint32_t(11 + r), false);
            w.insert(w.end(), a.w.begin(), a.w.end());
        }
        for (int64_t i = 0; i < nt; ++i) {
            Rows a = random_rows(t, n, uint32_t(50 + i), false);
            x.insert(x.end(), a.x.begin(), a.x.end());
        }
        const size_t wrb = rbytes(t, n), xrb = rbytes(vec_dot_type(t), n);
        std::vector<uint8_t> packed(g->pack_bytes(n, nt)), scratch(g->scratch_bytes(n) + 1);
        g->pack(n, x.data(), xrb, nt, packed.data());
        std::vector<float> out(size_t(nr * nt));
        g->run(n, w.data(), wrb, nr, packed.data(), nt, out.data(), size_t(nr), scratch.data());
        VecDotFn dot = vec_dot_kernel(t, Isa::Scalar);
        for (int64_t r = 0; r < nr; ++r)
            for (int64_t i = 0; i < nt; ++i)
                EXPECT_EQ(out[size_t(i * nr + r)], dot(n, &w[size_t(r) * wrb], &x[size_t(i) * xrb]))
                    << tname(t);
    }
}

TEST(QuantGemm, BlockedMatchesScalar) {
    // Every blocked GEMM against the scalar vec_dot of each (row, token), on random blocks
    // (some with extreme scales), for row and token counts around the kernels' tiles (4
    // rows, 16-token groups, 16-row blocks), at odd addresses, with the activations packed
    // in one piece or group by group. Integer sums are exact; each output is the sum over
    // blocks of a float-scaled exact integer, accumulated in float, so as for the vec_dot
    // kernels |gemm - scalar| <= 1e-6 * sum |w x|.
    const Isa best = detected_isa();
    int tested = 0;
    double worst = 0;
    for (Type t : kWeightTypes) {
        for (int level = int(Isa::AVX2); level <= int(best); ++level) {
            const Gemm* g = gemm_kernel(t, Isa(level));
            if (!g) continue;
            ++tested;
            const bool k = layout(t).block == 256;
            const std::vector<int64_t> lens =
                k ? std::vector<int64_t>{256, 512, 4096} : std::vector<int64_t>{32, 96, 1024, 4096};
            const struct {
                int64_t nr, nt;
            } shapes[] = {{1, 1}, {5, 3}, {4, 16}, {19, 17}, {37, 40}, {16, 33}};
            for (int64_t n : lens) {
                for (auto sh : shapes) {
                    if (n == 4096 && sh.nr * sh.nt > 200) continue;  // keeps the test quick
                    const size_t wrb = rbytes(t, n), xrb = rbytes(vec_dot_type(t), n);
                    std::vector<uint8_t> wbuf(wrb * size_t(sh.nr) + 65),
                        xbuf(xrb * size_t(sh.nt) + 67);
                    uint8_t* w = wbuf.data() + (64 - uintptr_t(wbuf.data()) % 64) % 64 + 1;
                    uint8_t* x = xbuf.data() + (64 - uintptr_t(xbuf.data()) % 64) % 64 + 3;
                    for (int64_t r = 0; r < sh.nr; ++r) {
                        Rows a = random_rows(t, n, uint32_t(1000 * n + r), r % 7 == 3);
                        std::memcpy(w + size_t(r) * wrb, a.w.data(), wrb);
                    }
                    for (int64_t i = 0; i < sh.nt; ++i) {
                        Rows a = i % 5 == 4 ? quantized_rows(t, n, uint32_t(i))
                                            : random_rows(t, n, uint32_t(77 * n + i), false);
                        std::memcpy(x + size_t(i) * xrb, a.x.data(), xrb);
                    }
                    std::vector<uint8_t> packed(g->pack_bytes(n, sh.nt)), p2(packed.size());
                    std::vector<uint8_t> scratch(g->scratch_bytes(n));
                    g->pack(n, x, xrb, sh.nt, packed.data());
                    // group by group gives the same bytes
                    const int64_t pg = g->pack_group;
                    for (int64_t t0 = 0; t0 < sh.nt; t0 += pg)
                        g->pack(n, x + size_t(t0) * xrb, xrb, std::min(pg, sh.nt - t0),
                                p2.data() + size_t(t0 / pg) * g->pack_bytes(n, pg));
                    EXPECT_EQ(packed, p2) << tname(t);
                    const size_t os = size_t(sh.nr) + 3;  // output rows further apart
                    std::vector<float> out(os * size_t(sh.nt), -7.0f);
                    g->run(n, w, wrb, sh.nr, packed.data(), sh.nt, out.data(), os, scratch.data());
                    VecDotFn dot = vec_dot_kernel(t, Isa::Scalar);
                    for (int64_t r = 0; r < sh.nr; ++r)
                        for (int64_t i = 0; i < sh.nt; ++i) {
                            const uint8_t* wr = w + size_t(r) * wrb;
                            const uint8_t* xr = x + size_t(i) * xrb;
                            double ref, mag;
                            reference_dot(t, n, wr, xr, ref, mag);
                            const double a = out[size_t(i) * os + size_t(r)], b = dot(n, wr, xr);
                            ASSERT_TRUE(std::isfinite(a)) << tname(t);
                            EXPECT_LE(std::fabs(a - b), 1e-6 * mag + 1e-30)
                                << isa_name(Isa(level)) << " " << tname(t) << " n=" << n
                                << " r=" << r << " t=" << i << ": gemm " << a << " scalar " << b;
                            if (mag > 0) worst = std::max(worst, std::fabs(a - b) / mag);
                        }
                    for (int64_t i = 0; i < sh.nt; ++i)  // nothing written between rows
                        for (size_t r = size_t(sh.nr); r < os; ++r)
                            EXPECT_EQ(out[size_t(i) * os + r], -7.0f);
                }
            }
        }
    }
    std::printf("  %d blocked GEMMs, worst |gemm-scalar| / sum|wx| = %.3g\n", tested, worst);
    if (best >= Isa::AVX512_VNNI) {
        EXPECT_EQ(tested, 5);
    }
    for (Type t : kWeightTypes)
        EXPECT_EQ(gemm_fn(t), best >= Isa::AVX512_VNNI ? gemm_kernel(t, best) : nullptr);
}

}  // namespace
}  // namespace ragd::quant
