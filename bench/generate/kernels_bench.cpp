// kernels_bench: the engine's dot-product kernels as a matrix-vector product (every row of
// a weight matrix against one quantized activation row), per weight type and per
// instruction-set level this CPU has, one thread. Counters (per second of CPU time):
//   bytes  weight bytes read (the activation row stays in cache);
//   ops    2 * rows * cols operations (a multiply and an add per weight).
// Two sizes: "4096x4096" (a 7B attention matrix: 9.4 MB as Q4_K, 17.8 MB as Q8_0, 67 MB
// as F32; the quantized ones may sit in the last-level cache) and "512MiB", about 512 MiB
// of 4096-column rows, so that every pass reads memory. Also the activation quantizers
// (quantize_row of 4096 floats to Q8_0 and Q8_K).
//
//   build/bench/kernels_bench [--benchmark_filter=Q4_K] [--benchmark_repetitions=5]
// With repetitions, the "max" rows give the best rate seen (the machine is shared).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "generate/gguf.h"
#include "generate/quant.h"

namespace {

using ragd::gguf::Type;
namespace quant = ragd::quant;

const char* type_name(Type t) {
    return ragd::gguf::type_info(uint32_t(t))->name;
}

// Random weights as the format stores them: quantized from N(0, 1) floats, one row at a
// time, then replicated (quantizing 512 MB would take longer than the benchmark).
struct Matrix {
    int64_t rows = 0, cols = 0;
    size_t row_bytes = 0;
    std::vector<uint8_t> w;
    std::vector<uint8_t> x;
    std::vector<float> y;
};

Matrix make_matrix(Type t, int64_t rows, int64_t cols) {
    Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = ragd::gguf::row_bytes(t, cols);
    m.w.resize(m.row_bytes * size_t(rows));
    std::mt19937 rng(42);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> f(static_cast<size_t>(cols));
    const int64_t distinct = std::min<int64_t>(rows, 64);
    for (int64_t r = 0; r < distinct; ++r) {
        for (auto& v : f) v = g(rng);
        quant::quantize_row(t, f.data(), m.w.data() + size_t(r) * m.row_bytes, cols);
    }
    for (int64_t r = distinct; r < rows; ++r)
        std::memcpy(m.w.data() + size_t(r) * m.row_bytes,
                    m.w.data() + size_t(r % distinct) * m.row_bytes, m.row_bytes);
    Type xt = quant::vec_dot_type(t);
    m.x.resize(ragd::gguf::row_bytes(xt, cols));
    for (auto& v : f) v = g(rng);
    quant::quantize_row(xt, f.data(), m.x.data(), cols);
    m.y.resize(size_t(rows));
    return m;
}

void BM_matvec(benchmark::State& state, Type t, quant::Isa isa, int64_t rows, int64_t cols) {
    quant::VecDotFn f = quant::vec_dot_kernel(t, isa);
    Matrix m = make_matrix(t, rows, cols);
    for (auto _ : state) {
        const uint8_t* w = m.w.data();
        for (int64_t r = 0; r < rows; ++r, w += m.row_bytes)
            m.y[size_t(r)] = f(cols, w, m.x.data());
        benchmark::DoNotOptimize(m.y.data());
        benchmark::ClobberMemory();
    }
    const double it = double(state.iterations());
    state.counters["bytes"] =
        benchmark::Counter(it * double(m.w.size()), benchmark::Counter::kIsRate);
    state.counters["ops"] =
        benchmark::Counter(it * 2.0 * double(rows * cols), benchmark::Counter::kIsRate);
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
                benchmark::RegisterBenchmark(name.c_str(), BM_matvec, t, isa, rows, cols)
                    ->Unit(benchmark::kMillisecond)
                    ->ComputeStatistics("max", max_of);
            }
        }
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
