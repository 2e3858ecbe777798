// membw: the memory bandwidth that bounds decode speed. Reads (and copies) a 1 GiB array
// with AVX2 loads on T threads, several passes, and prints the best GB/s. Decode reads
// every weight once per token, so tokens/s can be at most bandwidth / model bytes.
//
//   membw [-t THREADS] [-s GiB]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Sums 32-byte lanes of [p, p + n) with four independent accumulators.
__attribute__((target("avx2"))) long long read_sum(const char* p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    alignas(32) long long out[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
    return out[0] + out[1] + out[2] + out[3];
}

template <class Fn>
double best_of(int passes, Fn fn) {
    double best = 1e30;
    for (int i = 0; i < passes; ++i) {
        double t0 = now();
        fn();
        best = std::min(best, now() - t0);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2;
    double gib = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "-t")) threads = std::max(1, std::atoi(argv[i + 1]));
        if (!std::strcmp(argv[i], "-s")) gib = std::max(0.125, std::atof(argv[i + 1]));
    }
    const size_t n = size_t(gib * (1 << 30)) / 4096 * 4096;
    auto alloc = [&] {
        return std::unique_ptr<char[], decltype(&std::free)>(
            static_cast<char*>(std::aligned_alloc(4096, n)), &std::free);
    };
    auto src = alloc(), dst = alloc();
    std::memset(src.get(), 1, n);
    std::memset(dst.get(), 0, n);
    const size_t part = n / size_t(threads) / 128 * 128;
    std::vector<long long> sums(static_cast<size_t>(threads));
    auto parallel = [&](auto fn) {
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) ts.emplace_back(fn, t);
        for (auto& t : ts) t.join();
    };
    double read_s = best_of(5, [&] {
        parallel([&](int t) { sums[size_t(t)] = read_sum(src.get() + size_t(t) * part, part); });
    });
    double copy_s = best_of(5, [&] {
        parallel([&](int t) {
            std::memcpy(dst.get() + size_t(t) * part, src.get() + size_t(t) * part, part);
        });
    });
    long long check = 0;
    for (long long s : sums) check += s;
    const double bytes = double(part) * threads;
    std::printf(
        "threads %d, array %.2f GiB: read %.1f GB/s, copy %.1f GB/s (read + write)"
        " [checksum %lld]\n",
        threads, gib, bytes / read_s / 1e9, 2 * bytes / copy_s / 1e9, check);
    return 0;
}
