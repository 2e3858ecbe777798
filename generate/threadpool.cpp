#include "generate/threadpool.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace ragd {

int physical_cores() {
    // Count distinct (physical id, core id) pairs; fall back to the online CPUs.
    std::ifstream in("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, phys = "0";
    while (std::getline(in, line)) {
        auto value = [&] { return line.substr(line.find(':') + 1); };
        if (line.rfind("physical id", 0) == 0) phys = value();
        if (line.rfind("core id", 0) == 0) cores.insert({phys, value()});
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cores.empty() ? int(online) : int(cores.size());
    return n < 1 ? 1 : n;
}

namespace {

// How a thread waiting for the next job (or the caller waiting for the workers) waits
// before it blocks. Decode runs ~250 jobs per token with serial gaps of up to a few
// hundred microseconds between them (rope, SiLU, sampling), and a worker that has gone to
// sleep costs a futex wake-up: in a VM tens of microseconds or more (an IPI to a halted
// vCPU). 1000 pauses (~50 us on Zen 5) alone was too short: workers slept several times
// per layer. So after the pauses the thread keeps polling with sched_yield, up to 500 us
// by default (RAGD_POLL_US; 0 blocks right after the pauses, the old behaviour): on an
// idle core sched_yield returns at once and the thread stays awake. Pure spinning for 2 ms
// made decode 5x slower with other processes on the cores, and with more threads than
// CPUs polling only takes time from the threads that work, so then it is off.
constexpr int kSpins = 1000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

std::chrono::microseconds poll_time(int n_threads) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && n_threads > online) return std::chrono::microseconds(0);
    const char* env = std::getenv("RAGD_POLL_US");
    return std::chrono::microseconds(env ? std::max(0L, std::atol(env)) : 500L);
}

// Waits until done() or the pauses and the polling time have passed; returns done().
template <class Done>
bool spin_until(Done done, std::chrono::microseconds poll) {
    for (int i = 0; i < kSpins; ++i) {
        if (done()) return true;
        cpu_relax();
    }
    if (poll.count() == 0) return done();
    const auto deadline = std::chrono::steady_clock::now() + poll;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        sched_yield();
    }
    return true;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads > 0 ? n_threads : physical_cores()), poll_(poll_time(n_threads_)) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int ith) {
    uint64_t seen = 0;
    for (;;) {
        spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, poll_);
        const std::function<void(int, int)>* job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            ++sleepers_;
            wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
            --sleepers_;
            if (stop_) return;
            seen = generation_.load();
            job = job_;
        }
        (*job)(ith, n_threads_);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mu_);  // pairs with the waiter's predicate check
            done_.notify_one();
        }
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    bool wake;
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_ = &fn;
        pending_.store(n_threads_ - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        wake = sleepers_ > 0;
    }
    if (wake) wake_.notify_all();
    fn(0, n_threads_);
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, poll_)) {
        std::unique_lock<std::mutex> lock(mu_);
        done_.wait(lock, [&] { return pending_.load() == 0; });
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n_threads_ == 1 || n <= grain) {
        fn(0, n);
        return;
    }
    // Guided: a chunk is 1/(2T) of what is left, in whole grains, never less than one
    // grain. Early chunks are long (few atomic operations, long sequential reads), the last
    // ones a grain, so the threads finish within about a grain of each other; with fixed
    // chunks the tail of every decode product was up to a chunk long.
    const int64_t parts = 2 * int64_t(n_threads_);
    std::atomic<int64_t> cursor{0};
    run([&](int, int) {
        int64_t begin = cursor.load(std::memory_order_relaxed);
        while (begin < n) {
            const int64_t size = std::max(grain, (n - begin) / parts / grain * grain);
            if (!cursor.compare_exchange_weak(begin, begin + size, std::memory_order_relaxed))
                continue;  // begin now holds the current cursor
            fn(begin, std::min(n, begin + size));
            begin = cursor.load(std::memory_order_relaxed);
        }
    });
}

}  // namespace ragd
