// kernels_bench: the engine's dot-product kernels as a matrix-vector product (every row of
// a weight matrix against one quantized activation row), per weight type and per
// instruction-set level this CPU has. Counters, per second:
//   bytes  weight bytes read (the activation row stays in cache);
//   ops    2 * rows * cols operations (a multiply and an add per weight).
// Two sizes: "4096x4096" (a 7B attention matrix: 9.4 MB as Q4_K, 17.8 MB as Q8_0, 67 MB
// as F32; the quantized ones may sit in the last-level cache) and "512MiB", about 512 MiB
// of 4096-column rows, so that every pass reads memory. One thread, rates per second of
// CPU time; the kernel vec_dot_fn picks is also run at 512MiB on 1 and 2 threads splitting
// the rows, rates per second of real time (the decode situation). Also the activation
// quantizers (quantize_row of 4096 floats to Q8_0 and Q8_K), SwiGLU over a 7B layer's
// 14,336 values ("swiglu/"), and the prefill GEMM
// ("gemm/": a 4096x4096 matrix against 16, 64, 256 tokens; ops = 2 * rows * cols * tokens),
// and attention ("attention/": one KV head of a 7B model, head size 128, against 2,048
// cached positions: 64 query rows as in prefill (16 tokens x 4 heads of a group) or 4 as
// in decode; ops = 4 * rows * positions * 128, the scores' and the values' multiply-adds).
//
//   build/bench/kernels_bench [--benchmark_filter=Q4_K] [--benchmark_repetitions=5]
// With repetitions, the "_max" rows give the best rate seen (time columns there are the
// worst: read the rates).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "generate/attention.h"
#include "generate/gguf.h"
#include "generate/quant.h"

namespace ragd::detail {  // generate/ops.cpp: SwiGLU at one instruction-set level
void swiglu(float* gate, const float* up, size_t n, quant::Isa isa);
}

namespace {

using ragd::gguf::Type;
namespace quant = ragd::quant;

const char* type_name(Type t) {
    return ragd::gguf::type_info(uint32_t(t))->name;
}

// Random weights as the format stores them: quantized from N(0, 1) floats, 64 rows, then
// replicated (quantizing 512 MiB would take longer than the benchmark). The weights start
// 32 bytes past a 64-byte boundary, as a tensor in a GGUF file may (its alignment is 32);
// the activation row is 64-byte aligned.
struct Matrix {
    Type type = Type::F32;
    int64_t rows = 0, cols = 0;
    size_t row_bytes = 0;
    std::vector<uint8_t> wbuf, xbuf;
    uint8_t* w = nullptr;
    uint8_t* x = nullptr;
};

uint8_t* aligned_in(std::vector<uint8_t>& buf, size_t bytes, size_t offset) {
    buf.resize(bytes + 64 + offset);
    uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
    return buf.data() + (64 - p % 64) % 64 + offset;
}

std::shared_ptr<const Matrix> make_matrix(Type t, int64_t rows, int64_t cols) {
    auto m = std::make_shared<Matrix>();
    m->type = t;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = ragd::gguf::row_bytes(t, cols);
    m->w = aligned_in(m->wbuf, m->row_bytes * size_t(rows), 32);
    std::mt19937 rng(42);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> f(static_cast<size_t>(cols));
    const int64_t distinct = std::min<int64_t>(rows, 64);
    for (int64_t r = 0; r < distinct; ++r) {
        for (auto& v : f) v = g(rng);
        quant::quantize_row(t, f.data(), m->w + size_t(r) * m->row_bytes, cols);
    }
    for (int64_t r = distinct; r < rows; ++r)
        std::memcpy(m->w + size_t(r) * m->row_bytes, m->w + size_t(r % distinct) * m->row_bytes,
                    m->row_bytes);
    Type xt = quant::vec_dot_type(t);
    m->x = aligned_in(m->xbuf, ragd::gguf::row_bytes(xt, cols), 0);
    for (auto& v : f) v = g(rng);
    quant::quantize_row(xt, f.data(), m->x, cols);
    return m;
}

// The matrix of the running benchmark, shared by its threads and kept for the next
// benchmark of the same shape (only one is held: 512 MiB at most).
std::shared_ptr<const Matrix> matrix(Type t, int64_t rows, int64_t cols) {
    static std::mutex mu;
    static std::shared_ptr<const Matrix> held;
    std::lock_guard<std::mutex> lock(mu);
    if (!held || held->type != t || held->rows != rows || held->cols != cols) {
        held.reset();
        held = make_matrix(t, rows, cols);
    }
    return held;
}

// With T threads, thread i takes rows [i * rows / T, (i + 1) * rows / T): the row split a
// matrix-vector product in the engine makes.
void BM_matvec(benchmark::State& state, Type t, quant::Isa isa, int64_t rows, int64_t cols) {
    const quant::VecDotFn f = quant::vec_dot_kernel(t, isa);
    const std::shared_ptr<const Matrix> m = matrix(t, rows, cols);
    const int64_t r0 = rows * state.thread_index() / state.threads();
    const int64_t r1 = rows * (state.thread_index() + 1) / state.threads();
    std::vector<float> y(size_t(r1 - r0));
    for (auto _ : state) {
        const uint8_t* w = m->w + size_t(r0) * m->row_bytes;
        for (int64_t r = r0; r < r1; ++r, w += m->row_bytes) y[size_t(r - r0)] = f(cols, w, m->x);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    // Google Benchmark sums a counter over the threads and divides a rate by the wall time
    // of the run (with UseRealTime, the threads' times averaged), so each thread counts its
    // own rows: the sum is the aggregate rate. (Until session 5 each thread's count was
    // also multiplied by the thread count, which doubled the 2-thread figures.)
    const double k = double(state.iterations());
    state.counters["bytes"] =
        benchmark::Counter(k * double(m->row_bytes) * double(r1 - r0), benchmark::Counter::kIsRate);
    state.counters["ops"] =
        benchmark::Counter(k * 2.0 * double((r1 - r0) * cols), benchmark::Counter::kIsRate);
}

// Prefill: rows x 4096 weights against nt activation rows (quantized from N(0, 1)).
// "gemm": the blocked kernel (activations packed once, outside the timing: ops.cpp packs
// once per product, ~1% of it); "loop": a vec_dot per row and token, the engine's path
// before the blocked kernels. With T threads each takes a contiguous share of the rows.
struct Activations {
    std::vector<uint8_t> x, packed;
};

Activations activations(Type t, int64_t cols, int64_t nt, const quant::Gemm* g) {
    Activations a;
    const Type xt = quant::vec_dot_type(t);
    const size_t xrb = ragd::gguf::row_bytes(xt, cols);
    a.x.resize(xrb * size_t(nt));
    std::mt19937 rng(7);
    std::normal_distribution<float> gd(0.0f, 1.0f);
    std::vector<float> f(static_cast<size_t>(cols));
    for (int64_t i = 0; i < nt; ++i) {
        for (auto& v : f) v = gd(rng);
        quant::quantize_row(xt, f.data(), a.x.data() + size_t(i) * xrb, cols);
    }
    if (g) {
        a.packed.resize(g->pack_bytes(cols, nt));
        g->pack(cols, a.x.data(), xrb, nt, a.packed.data());
    }
    return a;
}

void BM_gemm(benchmark::State& state, Type t, bool blocked, int64_t rows, int64_t cols,
             int64_t nt) {
    const quant::Gemm* g = blocked ? quant::gemm_fn(t) : nullptr;
    const quant::VecDotFn dot = quant::vec_dot_fn(t);
    const std::shared_ptr<const Matrix> m = matrix(t, rows, cols);
    const Activations a = activations(t, cols, nt, g);
    const size_t xrb = ragd::gguf::row_bytes(quant::vec_dot_type(t), cols);
    const int64_t r0 = rows * state.thread_index() / state.threads();
    const int64_t r1 = rows * (state.thread_index() + 1) / state.threads();
    std::vector<float> out(size_t(rows * nt));
    std::vector<uint8_t> scratch(g ? g->scratch_bytes(cols) : 0);
    for (auto _ : state) {
        if (g) {
            g->run(cols, m->w + size_t(r0) * m->row_bytes, m->row_bytes, r1 - r0, a.packed.data(),
                   nt, out.data() + r0, size_t(rows), scratch.data());
        } else {
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t i = 0; i < nt; ++i)
                    out[size_t(i * rows + r)] =
                        dot(cols, m->w + size_t(r) * m->row_bytes, a.x.data() + size_t(i) * xrb);
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double k = double(state.iterations());  // per thread: see BM_matvec
    state.counters["ops"] =
        benchmark::Counter(k * 2.0 * double((r1 - r0) * cols * nt), benchmark::Counter::kIsRate);
}

void BM_quantize(benchmark::State& state, Type t) {
    const int64_t n = 4096;
    std::vector<float> f(static_cast<size_t>(n));
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (auto& v : f) v = g(rng);
    std::vector<uint8_t> out(ragd::gguf::row_bytes(t, n));
    for (auto _ : state) {
        quant::quantize_row(t, f.data(), out.data(), n);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["elements"] =
        benchmark::Counter(double(state.iterations()) * double(n), benchmark::Counter::kIsRate);
}

// SwiGLU over one 7B layer's 14,336 gate and up values (restored each pass).
void BM_swiglu(benchmark::State& state, quant::Isa isa) {
    const size_t n = 14336;
    std::vector<float> gate0(n), gate(n), up(n);
    std::mt19937 rng(2);
    std::normal_distribution<float> g(0.0f, 2.0f);
    for (size_t i = 0; i < n; ++i) gate0[i] = g(rng), up[i] = g(rng);
    for (auto _ : state) {
        std::memcpy(gate.data(), gate0.data(), n * sizeof(float));
        ragd::detail::swiglu(gate.data(), up.data(), n, isa);
        benchmark::DoNotOptimize(gate.data());
        benchmark::ClobberMemory();
    }
    state.counters["elements"] =
        benchmark::Counter(double(state.iterations()) * double(n), benchmark::Counter::kIsRate);
}

void BM_attention(benchmark::State& state, quant::Isa isa, int rows, bool q8) {
    namespace att = ragd::attention;
    const int hd = 128, n_pos = 2048;
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> k(size_t(n_pos) * hd), v(size_t(n_pos) * hd), q(size_t(rows) * hd),
        out(size_t(rows) * hd), scales(size_t(n_pos), 0.02f);
    std::vector<int8_t> k8(k.size()), v8(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = g(rng), v[i] = g(rng);
        k8[i] = int8_t(std::clamp(k[i] * 40.0f, -127.0f, 127.0f));
        v8[i] = int8_t(std::clamp(v[i] * 40.0f, -127.0f, 127.0f));
    }
    for (float& x : q) x = g(rng);
    att::KvHead kv;
    kv.hd = hd;
    if (q8)
        kv.k8 = k8.data(), kv.v8 = v8.data(), kv.k_scale = scales.data(),
        kv.v_scale = scales.data();
    else
        kv.k = k.data(), kv.v = v.data();
    std::vector<const float*> qp;
    std::vector<float*> op;
    std::vector<int> np;
    for (int r = 0; r < rows; ++r) {
        qp.push_back(&q[size_t(r) * hd]);
        op.push_back(&out[size_t(r) * hd]);
        np.push_back(n_pos - (rows - 1 - r) / 4);  // the last tokens of a 2,048-token prompt
    }
    att::Rows r;
    r.n = rows, r.q = qp.data(), r.out = op.data(), r.n_pos = np.data();
    att::Workspace ws;
    const att::AttendFn fn = att::attend_kernel(isa);
    for (auto _ : state) {
        fn(kv, r, 0.088f, ws);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["ops"] = benchmark::Counter(double(state.iterations()) * 4.0 * rows * n_pos * hd,
                                               benchmark::Counter::kIsRate);
}

double max_of(const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end());
}

void register_all() {
    const Type types[] = {Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::Q8_0,
                          Type::Q4_0, Type::F16,  Type::BF16, Type::F32};
    const quant::Isa levels[] = {quant::Isa::Scalar, quant::Isa::AVX2, quant::Isa::AVX512,
                                 quant::Isa::AVX512_VNNI};
    const int64_t cols = 4096;
    for (Type t : types) {
        const size_t rb = ragd::gguf::row_bytes(t, cols);
        const int64_t dram_rows = int64_t((512u << 20) / rb);
        for (quant::Isa isa : levels) {
            if (!quant::vec_dot_kernel(t, isa)) continue;  // level absent here, or no kernel
            for (int size = 0; size < 2; ++size) {
                const int64_t rows = size == 0 ? 4096 : dram_rows;
                // the scalar kernels only at the cache size: they are far from memory speed
                if (size == 1 && isa == quant::Isa::Scalar) continue;
                std::string name = std::string("matvec/") + type_name(t) + "/" +
                                   quant::isa_name(isa) + (size == 0 ? "/4096x4096" : "/512MiB");
                auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_matvec, t, isa, rows, cols)
                              ->Unit(benchmark::kMillisecond)
                              ->ComputeStatistics("max", max_of);
                // the kernel the engine uses, from memory, also on 2 threads (real time)
                if (size == 1 && quant::vec_dot_fn(t) == quant::vec_dot_kernel(t, isa))
                    b->Threads(1)->Threads(2)->UseRealTime();
            }
        }
    }
    // prefill: a 4096x4096 matrix against a batch of tokens
    for (Type t : {Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::Q8_0, Type::Q4_0}) {
        for (int64_t nt : {16, 64, 256}) {
            for (bool blocked : {true, false}) {
                if (blocked && !quant::gemm_fn(t)) continue;
                if (!blocked && nt != 64) continue;  // the loop's rate does not depend on nt
                std::string name = std::string("gemm/") + type_name(t) +
                                   (blocked ? "/blocked" : "/loop") + "/4096x4096x" +
                                   std::to_string(nt);
                auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_gemm, t, blocked,
                                                       int64_t(4096), int64_t(4096), nt)
                              ->Unit(benchmark::kMillisecond)
                              ->ComputeStatistics("max", max_of);
                if (blocked && nt == 256) b->Threads(1)->Threads(2)->UseRealTime();
            }
        }
    }
    for (quant::Isa isa : {quant::Isa::Scalar, quant::Isa::AVX2, quant::Isa::AVX512}) {
        if (isa > quant::detected_isa()) continue;
        for (int rows : {64, 4})
            for (bool q8 : {false, true}) {
                std::string name = std::string("attention/") + quant::isa_name(isa) +
                                   (q8 ? "/q8" : "/f32") + "/" + std::to_string(rows) + "x2048";
                benchmark::RegisterBenchmark(name.c_str(), BM_attention, isa, rows, q8)
                    ->Unit(benchmark::kMicrosecond)
                    ->ComputeStatistics("max", max_of);
            }
    }
    for (quant::Isa isa : {quant::Isa::Scalar, quant::Isa::AVX2, quant::Isa::AVX512}) {
        if (isa > quant::detected_isa()) continue;
        std::string name = std::string("swiglu/") + quant::isa_name(isa) + "/14336";
        benchmark::RegisterBenchmark(name.c_str(), BM_swiglu, isa)
            ->Unit(benchmark::kMicrosecond)
            ->ComputeStatistics("max", max_of);
    }
    for (Type t : {Type::Q8_0, Type::Q8_K}) {
        std::string name = std::string("quantize_row/") + type_name(t) + "/4096";
        benchmark::RegisterBenchmark(name.c_str(), BM_quantize, t)
            ->Unit(benchmark::kMicrosecond)
            ->ComputeStatistics("max", max_of);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::printf("kernels_bench: best level on this CPU: %s\n",
                quant::isa_name(quant::detected_isa()));
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
