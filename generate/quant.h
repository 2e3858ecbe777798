// generate/quant: weight block formats, conversions and the dot products the engine runs.
//
// Block layouts follow the GGUF/ggml specification (public facts, written here from the
// spec): Q8_0 and Q4_0 hold 32 weights per block with one fp16 scale; the K-quants (Q4_K,
// Q5_K, Q6_K) hold 256 weights per super-block with 6- or 8-bit sub-block scales; Q8_K is
// the 256-element activation format the K-quant dot products take.
//
// Dot products take the weight row in its own format and the activation row already
// quantized to vec_dot_type(weight type), so that a matrix-vector product quantizes the
// activations once and reads every weight byte once. Each kernel has a scalar version
// and SIMD versions (AVX2, AVX-512, AVX-512 VNNI) chosen at run time from the CPU's
// features; tests compare every SIMD version with the scalar one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "generate/gguf.h"

namespace ragd::quant {

using gguf::Type;

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even

// Converts n elements (a multiple of the block size) of type t at src into floats.
// Supports F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q8_K.
void dequantize_row(Type t, const void* src, float* dst, int64_t n);

// Quantizes n floats (a multiple of the block size) into type t at dst (row_bytes(t, n)
// bytes). Used for activations and by the test model writer; every type above.
void quantize_row(Type t, const float* src, void* dst, int64_t n);

// The format activations must be in for a dot product with weights of type t:
// Q8_0 for Q8_0 and Q4_0, Q8_K for Q4_K/Q5_K/Q6_K, F32 for F32/F16/BF16.
Type vec_dot_type(Type t);

// Instruction sets a kernel may use. Higher includes lower.
enum class Isa { Scalar = 0, AVX2 = 1, AVX512 = 2, AVX512_VNNI = 3 };
Isa detected_isa();  // what this CPU supports (cached)
const char* isa_name(Isa isa);

// sum over n of w[i] * x[i]; w is a row of type t, x a row of vec_dot_type(t), n a
// multiple of the block size.
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);

// The kernel for weights of type t at exactly instruction set isa, or nullptr when there
// is none at that level (callers fall back to a lower level). Tests use it to compare.
VecDotFn vec_dot_kernel(Type t, Isa isa);
// The best kernel for t on this CPU (never nullptr for a supported type).
VecDotFn vec_dot_fn(Type t);

inline float vec_dot(Type t, int64_t n, const void* w, const void* x) {
    return vec_dot_fn(t)(n, w, x);
}

// Matrix-matrix product for prefill: out[t * out_stride + r] = W[r] . X[t] for r < nr,
// t < nt. Unlike a loop of vec_dots it unpacks each weight row once for all tokens. The
// activations (nt rows of vec_dot_type(t), x_stride bytes apart) are first packed into the
// kernel's own layout, once per matrix product; run then takes any range of weight rows
// against them (each thread its own scratch of scratch_bytes(n)).
struct Gemm {
    // pack works on groups of this many tokens: tokens [g * pack_group, ...) may be packed
    // separately (in parallel) at dst + g * pack_bytes(n, pack_group).
    int64_t pack_group;
    size_t (*pack_bytes)(int64_t n, int64_t nt);
    void (*pack)(int64_t n, const void* x, size_t x_stride, int64_t nt, void* dst);
    size_t (*scratch_bytes)(int64_t n);
    void (*run)(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* packed,
                int64_t nt, float* out, size_t out_stride, void* scratch);
};

// The GEMM for weights of type t at exactly isa, or nullptr. The scalar one is the loop of
// scalar vec_dots (what the SIMD ones are tested against); only AVX512_VNNI has blocked
// kernels (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
const Gemm* gemm_kernel(Type t, Isa isa);
// The blocked GEMM for t on this CPU, or nullptr where there is none (then a loop of
// vec_dot_fn(t) is the fastest way).
const Gemm* gemm_fn(Type t);

}  // namespace ragd::quant
