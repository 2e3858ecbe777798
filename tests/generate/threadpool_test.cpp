// The engine's thread pool: every index is visited exactly once, across many back-to-back
// jobs (the decode loop's pattern: hundreds of small jobs per token), with sleeping and
// spinning workers alike.
#include "generate/threadpool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace ragd {
namespace {

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
    for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        EXPECT_EQ(pool.size(), threads);
        for (int64_t n : {0, 1, 7, 16, 1000, 4097}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
            });
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << n << " " << i;
        }
    }
}

TEST(ThreadPool, ParallelForRangesAreWholeGrainsLongestFirst) {
    // Guided: each range starts at a multiple of the grain and is whole grains long (the
    // one ending at n may be shorter); the first is about n / (2 * threads) long and the
    // last ones a single grain.
    for (int threads : {2, 3}) {
        ThreadPool pool(threads);
        for (int64_t n : {17, 1000, 4096, 11008}) {
            std::mutex mu;
            std::vector<std::pair<int64_t, int64_t>> ranges;
            pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
                std::lock_guard<std::mutex> lock(mu);
                ranges.emplace_back(b, e);
            });
            std::sort(ranges.begin(), ranges.end());
            int64_t at = 0;
            for (const auto& [b, e] : ranges) {
                EXPECT_EQ(b, at);
                EXPECT_EQ(b % 16, 0);
                if (e != n) {
                    EXPECT_EQ((e - b) % 16, 0);
                }
                at = e;
            }
            EXPECT_EQ(at, n);
            if (n >= 1000) {
                EXPECT_EQ(ranges.front().second,
                          std::max<int64_t>(16, n / (2 * threads) / 16 * 16));
                EXPECT_LE(ranges.back().second - ranges.back().first, 16);
            }
        }
    }
}

TEST(ThreadPool, ManyBackToBackJobs) {
    ThreadPool pool(4);
    std::atomic<int64_t> sum{0};
    for (int job = 0; job < 3000; ++job) {
        pool.run([&](int ith, int nth) {
            EXPECT_LT(ith, nth);
            sum.fetch_add(ith + 1);
        });
    }
    EXPECT_EQ(sum.load(), 3000 * (1 + 2 + 3 + 4));
}

TEST(ThreadPool, JobsAfterWorkersFellAsleep) {
    ThreadPool pool(3);
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin phase
        std::atomic<int> ran{0};
        pool.run([&](int, int) { ran.fetch_add(1); });
        EXPECT_EQ(ran.load(), 3);
    }
}

TEST(ThreadPool, CallerWaitsPastItsPollingForASlowWorker) {
    // A worker busy longer than the caller polls (2 ms): the caller must block and be
    // woken by the last worker, with every job's effects visible after run returns.
    ThreadPool pool(2);
    for (int round = 0; round < 3; ++round) {
        std::vector<int> done(2, 0);
        pool.run([&](int ith, int) {
            if (ith == 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
            done[size_t(ith)] = round + 1;
        });
        EXPECT_EQ(done[0], round + 1);
        EXPECT_EQ(done[1], round + 1);
    }
}

TEST(ThreadPool, PhysicalCoresIsPositive) {
    EXPECT_GE(physical_cores(), 1);
    ThreadPool pool(0);
    EXPECT_EQ(pool.size(), physical_cores());
}

}  // namespace
}  // namespace ragd
