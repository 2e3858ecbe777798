// generate/attention: causal attention over a KV cache, as small matrix products.
//
// A prefill batch asks hundreds of query rows (tokens x heads of a group) to attend to
// thousands of cached positions. Taking them one (token, head) at a time, a dot product
// per position, reads every key and value once per query row and leaves the FMA units
// idle on horizontal sums. Here all the query rows that share a KV head go together: keys
// are cached transposed in blocks of kBlock positions, so a block of scores is a small
// GEMM (query rows x kBlock keys, summed over the head dimension, no repacking), and the
// softmax is taken online, block by block (running max and sum per row), so nothing the
// size of the context is materialised: per thread, the output rows and a few vectors.
//
// The kernels are one tiled algorithm compiled three times: for AVX-512, for AVX2+FMA and
// for the baseline (generate/attention_kernels.h), chosen at run time like the quantized
// dot products (quant::detected_isa). Tests compare each with a double-precision softmax.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "generate/quant.h"

namespace ragd::attention {

// Positions per key block of the cache.
constexpr int kBlock = 64;

// One KV head's cache. Keys are transposed per block: element d of the key at position j
// is k[key_index(hd, j, d)]. Values are rows of hd elements, v[j * hd + d]. An 8-bit cache
// (k8/v8 instead of k/v) holds int8 elements and one scale per position and head
// (k_scale[j], v_scale[j]): the element is its int8 times the scale. Room for a whole
// number of key blocks.
struct KvHead {
    int hd = 0;
    float* k = nullptr;
    float* v = nullptr;
    int8_t* k8 = nullptr;
    int8_t* v8 = nullptr;
    float* k_scale = nullptr;
    float* v_scale = nullptr;
};

inline size_t key_index(int hd, int64_t j, int d) {
    return size_t(j / kBlock) * size_t(hd) * kBlock + size_t(d) * kBlock + size_t(j % kBlock);
}

// Writes the key and value (hd floats each) of position pos. The first position of a key
// block zeroes the block (its other positions are masked until written, but should not be
// garbage); an 8-bit cache stores each vector as int8 with the scale max|x| / 127.
void store(const KvHead& kv, int64_t pos, const float* key, const float* value);

// Query rows that share one KV head, in order of non-decreasing n_pos: row r attends to
// positions [0, n_pos[r]) (n_pos[r] >= 1) and writes hd floats at out[r].
struct Rows {
    int n = 0;
    const float* const* q = nullptr;
    float* const* out = nullptr;
    const int* n_pos = nullptr;
};

// Per-thread memory of the kernels (grown as needed, kept between calls).
struct Workspace {
    std::vector<float> o, m, l, p;
};

// out[r] = sum over j < n_pos[r] of softmax_j(scale * q[r] . key_j) * value_j, for every
// row. Keys and values at positions the rows see must have been written; the rest of a
// key block may hold anything finite or not (it is masked, never summed).
using AttendFn = void (*)(const KvHead& kv, const Rows& rows, float scale, Workspace& ws);

// The kernel at exactly isa, or nullptr where there is none (AVX512 and AVX512_VNNI share
// one); the best for this CPU. The SIMD kernels need hd to be a multiple of their width
// (16 or 8 floats); attend() falls back to the baseline one otherwise.
AttendFn attend_kernel(quant::Isa isa);
void attend(const KvHead& kv, const Rows& rows, float scale, Workspace& ws);

}  // namespace ragd::attention
