// A fixed pool of worker threads that run data-parallel loops.
//
// Decoding one token runs a few hundred short parallel loops, so the cost of
// starting a loop matters more than anything else here: workers spin briefly
// on an atomic job word before sleeping, and the calling thread takes a share
// of the work itself.
//
// A parallel_for is cut into a few chunks per thread that threads claim as
// they come. On a busy machine a worker may get its core only milliseconds
// after a loop starts; the caller then runs the chunks itself and waits only
// for chunks already claimed, never for a thread that has not shown up, so a
// token's few hundred loops do not each cost a scheduler time slice.
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

  // Calls fn(begin, end) over [0, n) split into contiguous ranges of whole
  // multiples of `grain` (the last may be shorter; at most kChunksPerThread
  // × size() ranges), on whichever threads claim them, and returns when all
  // are done. Runs inline when n is small or the pool has one thread. fn must
  // not depend on which thread runs a range. Not re-entrant: fn must not call
  // parallel_for on this pool.
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);

  // Calls fn(thread_index, thread_count) once on every thread of the pool,
  // concurrently (waits for every worker: for measuring the machine, not for
  // model work).
  void run_on_all(FunctionRef<void(int, int)> fn);

  // Each chunk costs a claim (a compare-and-swap on the job word) and a
  // count (chunks_done_), both cache lines passed between the cores: with
  // 16 chunks a thread, the 125M q8 decode, whose loops last 10-50 µs, ran
  // at 238 tokens/s, with 8 at 281 (1.3B q4 44.0 -> 49.1, 125M q8 batch 8
  // 781 -> 878; prompts unchanged; medians of alternating runs, Zen 5, the
  // job word and the counts on lines of their own as well). 4 did no better.
  static constexpr int kChunksPerThread = 8;

  // The number of physical cores of this machine (not hyper-threads).
  static int physical_cores();
  // A process-wide pool, created on first use with `threads` threads (later
  // calls with a different positive count recreate it).
  static ThreadPool& global(int threads = 0);

 private:
  // The job word: generation (32 bits) | kind (1 bit) | chunk count (15
  // bits) | next unclaimed chunk (16 bits). One atomic holds all four so that
  // a worker that wakes late can never claim a chunk of a job that ended.
  static constexpr uint64_t kAllKind = uint64_t{1} << 31;
  static constexpr int64_t kMaxChunks = (1 << 15) - 1;
  static uint32_t job_generation(uint64_t word) { return static_cast<uint32_t>(word >> 32); }

  void worker_loop(int index);
  void publish(uint64_t word);
  void run_chunks(uint32_t generation);

  std::vector<std::thread> workers_;
  const FunctionRef<void(int, int)>* all_job_ = nullptr;  // run_on_all's fn
  const FunctionRef<void(int64_t)>* chunk_job_ = nullptr;  // parallel_for's chunk
  // On cache lines of their own: the workers claim chunks on the first while
  // the caller polls the second (sharing a line, every claim and every
  // poll took it from the other core).
  alignas(64) std::atomic<uint64_t> job_word_{0};
  alignas(64) std::atomic<int64_t> chunks_done_{0};
  alignas(64) std::atomic<int> pending_{0};  // workers yet to finish a run_on_all
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex dispatch_mutex_;  // one loop at a time when several threads share the pool
};

}  // namespace gptneo
