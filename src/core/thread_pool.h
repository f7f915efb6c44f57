// A fixed pool of worker threads that run data-parallel loops.
//
// Decoding one token runs a few hundred short parallel loops, so the cost of
// starting a loop matters more than anything else here: workers spin briefly
// on an atomic generation counter before sleeping, and the calling thread
// takes a share of the work itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gptneo {

class ThreadPool {
 public:
  // A pool of `threads` threads in all, the caller included (threads - 1
  // workers). threads <= 0 means one per physical core.
  explicit ThreadPool(int threads = 0);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into at most size() contiguous
  // ranges of whole multiples of `grain` (the last may be shorter), and
  // returns when all are done. Runs inline when n is small or the pool has
  // one thread. Not re-entrant: fn must not call parallel_for on this pool.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(thread_index, thread_count) once on every thread of the pool.
  void run_on_all(const std::function<void(int, int)>& fn);

  // The number of physical cores of this machine (not hyper-threads).
  static int physical_cores();
  // A process-wide pool, created on first use with `threads` threads (later
  // calls with a different positive count recreate it).
  static ThreadPool& global(int threads = 0);

 private:
  void worker_loop(int index);
  void dispatch(const std::function<void(int, int)>& job);

  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex dispatch_mutex_;  // one loop at a time when several threads share the pool
};

}  // namespace gptneo
