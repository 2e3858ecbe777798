// generate/threadpool: a fixed set of worker threads that split loops between them.
//
// The engine calls parallel_for hundreds of times per token (every matrix product), so
// workers live as long as the pool and wait on a generation counter; nothing is created
// per call. The calling thread takes part as worker 0. Between jobs a worker spins for a
// short while, then polls with sched_yield for up to 500 us (RAGD_POLL_US) before it sleeps:
// a futex wake-up costs tens of microseconds (more in a VM), and the next matrix product
// usually follows within a few.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ragd {

class ThreadPool {
  public:
    // n_threads including the caller; 0 means the number of physical cores.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Runs fn(thread_index, n_threads) on every thread and returns when all are done.
    // fn splits its own work by the index; calls must not nest.
    void run(const std::function<void(int ith, int nth)>& fn);

    // Splits [0, n) into contiguous ranges and runs fn(begin, end) on them, dynamically
    // balanced (an atomic cursor), so uneven rows even out. Ranges start at multiples of
    // `grain` and are whole grains long (the last may be shorter): long ones first, a
    // grain at the end (guided scheduling).
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  private:
    int n_threads_;
    std::chrono::microseconds poll_;  // sched_yield polling before blocking (see .cpp)
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable wake_, done_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    int sleepers_ = 0;  // workers blocked on wake_ (under mu_)
    bool stop_ = false;

    void worker_loop(int ith);
};

// Physical cores of this machine (hyper-threads counted once); at least 1.
int physical_cores();

}  // namespace ragd
