// generate/attention: the baseline kernel (the tiled algorithm of attention_kernels.h at
// 4 floats per vector, what any x86-64 or other CPU runs) and the run-time choice.
#define RAGD_ATTN_W 4
#define RAGD_ATTN_NAME attend_base
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "generate/attention_kernels.h"

namespace ragd::attention {
namespace detail {
void attend_avx2(const KvHead&, const Rows&, float, float*, float*, float*, float*);
void attend_avx512(const KvHead&, const Rows&, float, float*, float*, float*, float*);
}  // namespace detail

namespace {

using KernelFn = void (*)(const KvHead&, const Rows&, float, float*, float*, float*, float*);

// Head sizes the vector code cannot take (hd % 4 != 0, none in practice): an exact
// two-pass softmax per row.
void attend_exact(const KvHead& kv, const Rows& rows, float scale) {
    std::vector<float> w;
    for (int r = 0; r < rows.n; ++r) {
        const int np = rows.n_pos[r];
        w.resize(size_t(np));
        float mx = -INFINITY;
        for (int j = 0; j < np; ++j) {
            float s = 0;
            for (int d = 0; d < kv.hd; ++d) {
                const size_t at = key_index(kv.hd, j, d);
                s += rows.q[r][d] * (kv.k8 ? kv.k8[at] * kv.k_scale[j] : kv.k[at]);
            }
            w[size_t(j)] = s * scale;
            mx = std::max(mx, w[size_t(j)]);
        }
        float sum = 0;
        for (float& x : w) sum += x = std::exp(x - mx);
        float* out = rows.out[r];
        std::fill(out, out + kv.hd, 0.0f);
        for (int j = 0; j < np; ++j) {
            const float a = w[size_t(j)] / sum;
            const size_t at = size_t(j) * size_t(kv.hd);
            for (int d = 0; d < kv.hd; ++d)
                out[d] +=
                    a * (kv.v8 ? kv.v8[at + size_t(d)] * kv.v_scale[j] : kv.v[at + size_t(d)]);
        }
    }
}

template <KernelFn kernel, int width>
void run(const KvHead& kv, const Rows& rows, float scale, Workspace& ws) {
    if (rows.n <= 0) return;
    if (kv.hd % width != 0) {
        if (width == 4) return attend_exact(kv, rows, scale);
        return run<detail::attend_base, 4>(kv, rows, scale, ws);
    }
    const size_t n = size_t(rows.n);
    if (ws.o.size() < n * size_t(kv.hd)) ws.o.resize(n * size_t(kv.hd));
    if (ws.m.size() < n) ws.m.resize(n), ws.l.resize(n);
    if (ws.p.size() < 4 * size_t(kBlock)) ws.p.resize(4 * size_t(kBlock));
    kernel(kv, rows, scale, ws.o.data(), ws.m.data(), ws.l.data(), ws.p.data());
}

}  // namespace

AttendFn attend_kernel(quant::Isa isa) {
    switch (isa) {
        case quant::Isa::Scalar:
            return run<detail::attend_base, 4>;
        case quant::Isa::AVX2:
            return run<detail::attend_avx2, 8>;
        case quant::Isa::AVX512:
        case quant::Isa::AVX512_VNNI:
            return run<detail::attend_avx512, 16>;
    }
    return nullptr;
}

void attend(const KvHead& kv, const Rows& rows, float scale, Workspace& ws) {
    static const AttendFn best = attend_kernel(quant::detected_isa());
    best(kv, rows, scale, ws);
}

namespace {

// int8 copies of x[0..n) at q[0], q[stride], ...; returns the scale (max |x| / 127).
float quantize_i8(const float* x, int8_t* q, size_t stride, int n) {
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float scale = amax / 127.0f;
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int i = 0; i < n; ++i) q[size_t(i) * stride] = static_cast<int8_t>(std::lrint(x[i] * inv));
    return scale;
}

}  // namespace

void store(const KvHead& kv, int64_t pos, const float* key, const float* value) {
    const int hd = kv.hd;
    const size_t key0 = key_index(hd, pos, 0), row = size_t(pos) * size_t(hd);
    const bool new_block = pos % kBlock == 0;
    const size_t block_elems = size_t(hd) * kBlock;
    if (kv.k8) {
        if (new_block) {
            std::memset(kv.k8 + key0, 0, block_elems);
            std::fill(kv.k_scale + pos, kv.k_scale + pos + kBlock, 0.0f);
            std::fill(kv.v_scale + pos, kv.v_scale + pos + kBlock, 0.0f);
        }
        kv.k_scale[pos] = quantize_i8(key, kv.k8 + key0, kBlock, hd);
        kv.v_scale[pos] = quantize_i8(value, kv.v8 + row, 1, hd);
    } else {
        if (new_block) std::fill(kv.k + key0, kv.k + key0 + block_elems, 0.0f);
        for (int d = 0; d < hd; ++d) kv.k[key0 + size_t(d) * kBlock] = key[d];
        std::memcpy(kv.v + row, value, sizeof(float) * size_t(hd));
    }
}

}  // namespace ragd::attention
