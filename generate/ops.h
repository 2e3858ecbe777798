// generate/ops: the numeric building blocks every architecture's forward pass shares.
//
// matmul is where prefill and decode spend their time: it converts the activations once
// to the weights' dot-product format (generate/quant.h) and splits the weight rows across
// the thread pool, so each weight byte is read once per batch of tokens. Batches of 12
// tokens or more go through the blocked GEMM (quant::gemm_fn), which also unpacks each
// weight row once per batch; decode uses the vec_dot kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/gguf.h"
#include "generate/threadpool.h"

namespace ragd {

// out[t * rows + r] = W[r] · x[t] for t < n_tokens, where W is a [cols, rows] tensor (ne[0]
// = cols) of any supported type and x holds n_tokens rows of cols floats. xq is scratch the
// caller keeps between calls (grown as needed).
void matmul(ThreadPool& pool, const gguf::Tensor& w, const float* x, int n_tokens,
            std::vector<uint8_t>& xq, float* out);

// Several products of the same x (q, k and v; gate and up): out_i = W_i x as above, all
// W_i with ne[0] = cols. In decode they run as one job over the rows of all of them, so
// the threads meet once instead of once per matrix.
struct MatmulOut {
    const gguf::Tensor* w;
    float* out;
};
void matmul(ThreadPool& pool, const MatmulOut* products, int n_products, const float* x,
            int n_tokens, std::vector<uint8_t>& xq);

// Reads every byte of the matrices with decode's row split and computes nothing: the rate
// at which this machine can feed decode right now. `ragd bench` puts decode beside it.
// All the matrices are one job (decode meets between products, this does not), so the
// rate is the most decode could reach. Returns the sum of all the bytes, so the reads
// cannot be optimised away.
uint64_t read_weights(ThreadPool& pool, const gguf::Tensor* const* ws, int n);

// sum of a[i] * b[i]; y += a * x. Vectorised for the best instruction set of the CPU.
float dot_f32(const float* a, const float* b, int n);
void axpy_f32(float* y, float a, const float* x, int n);

// gate[i] = silu(gate[i]) * up[i] (SwiGLU), with a vectorised exponential (relative error
// under 1e-6; the scalar fallback uses std::exp).
void swiglu(float* gate, const float* up, size_t n);

// out = x / rms(x) * w (RMSNorm), in double for the sum of squares.
void rmsnorm(float* out, const float* x, const float* w, int n, float eps);

}  // namespace ragd
