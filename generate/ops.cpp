#include "generate/ops.h"

#include <cmath>

#include "generate/quant.h"

namespace ragd {

// out[t * rows + r] = W[r] · x[t] for t < n_tokens: activations are converted once to
// the weights' dot-product format, then rows are split across threads; each row is read
// once for all tokens of the batch.
void matmul(ThreadPool& pool, const gguf::Tensor& w, const float* x, int n_tokens,
            std::vector<uint8_t>& xq, float* out) {
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
    pool.parallel_for(rows, 16, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const uint8_t* wr = w.data + size_t(r) * wrb;
            for (int t = 0; t < n_tokens; ++t)
                out[int64_t(t) * rows + r] = dot(cols, wr, xs + size_t(t) * xrb);
        }
    });
}

// Attention's inner loops, compiled for AVX-512, AVX2 and the baseline; the loader picks
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
