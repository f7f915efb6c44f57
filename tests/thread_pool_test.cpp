// The thread pool: every index of a loop is visited exactly once, in ranges
// that respect the grain, on every thread count; a thread whose share of a
// loop is done takes over what is left of another's.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace gptneo {
namespace {

TEST(ThreadPoolLoops, ParallelForCoversTheRangeOnceInWholeGrains) {
  for (const int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (const int64_t n : {1, 7, 16, 100, 1001})
      for (const int64_t grain : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex m;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          std::lock_guard<std::mutex> lock(m);
          ranges.emplace_back(b, e);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i;
        EXPECT_LE(static_cast<int>(ranges.size()), ThreadPool::kChunksPerThread * threads);
        for (const auto& [b, e] : ranges) EXPECT_EQ(b % grain, 0) << "a range starts inside a grain";
      }
  }
}

TEST(ThreadPoolLoops, RunOnAllCallsEveryThreadOnceAndManyLoopsInARow) {
  ThreadPool pool(3);
  for (int round = 0; round < 200; ++round) {  // many short loops, as decoding runs them
    std::atomic<int> mask{0};
    pool.run_on_all([&](int index, int count) {
      ASSERT_EQ(count, 3);
      mask.fetch_or(1 << index);
    });
    ASSERT_EQ(mask.load(), 0b111) << "round " << round;
  }
}

TEST(ThreadPoolLoops, ThousandsOfMixedLoopsInARowEachCoverTheirRange) {
  // Short loops one after another, as a decoded token runs them, mixed with
  // run_on_all: a worker that arrives late must never run a chunk of a loop
  // that has ended, nor miss or repeat one of the current loop.
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(64);
  for (int round = 0; round < 5000; ++round) {
    const int64_t n = 1 + round % 64;
    for (auto& h : hits) h.store(0, std::memory_order_relaxed);
    pool.parallel_for(n, 1 + round % 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "round " << round;
    if (round % 7 == 0) {
      std::atomic<int> mask{0};
      pool.run_on_all([&](int index, int) { mask.fetch_or(1 << index); });
      ASSERT_EQ(mask.load(), 0b111) << "round " << round;
    }
  }
}

TEST(ThreadPoolLoops, AThreadWhoseShareIsDoneTakesOverTheRestOfAnothers) {
  // The caller's share is its first 8 chunks; each of its chunks takes 20
  // ms when the caller runs it. The worker finishes its own 8 at once and
  // must then take the caller's unclaimed chunks from their far end.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> by_worker{0}, calls{0};
  std::vector<std::atomic<int>> hits(16);
  pool.parallel_for(16, 1, [&](int64_t b, int64_t e) {
    calls++;
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    if (std::this_thread::get_id() == caller)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    else
      by_worker++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_EQ(calls.load(), 16);
  EXPECT_GT(by_worker.load(), 8) << "the worker took none of the caller's share";
}

TEST(ThreadPoolLoops, EmptyLoopsDoNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.parallel_for(0, 8, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_GE(ThreadPool::physical_cores(), 1);
}

}  // namespace
}  // namespace gptneo
