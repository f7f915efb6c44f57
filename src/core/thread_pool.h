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
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace gptneo {

// A non-owning reference to a callable, cheaper than std::function (never
// allocates): the parallel loops of one decoded token must not allocate.
template <class Sig>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit, as std::function
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...); }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

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
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);

  // Calls fn(thread_index, thread_count) once on every thread of the pool.
  void run_on_all(FunctionRef<void(int, int)> fn);

  // The number of physical cores of this machine (not hyper-threads).
  static int physical_cores();
  // A process-wide pool, created on first use with `threads` threads (later
  // calls with a different positive count recreate it).
  static ThreadPool& global(int threads = 0);

 private:
  void worker_loop(int index);
  void dispatch(FunctionRef<void(int, int)> job);

  std::vector<std::thread> workers_;
  const FunctionRef<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex dispatch_mutex_;  // one loop at a time when several threads share the pool
};

}  // namespace gptneo
