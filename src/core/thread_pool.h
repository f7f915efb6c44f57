// A fixed pool of worker threads that run data-parallel loops.
//
// Decoding one token runs a few hundred short parallel loops, so the cost of
// starting a loop matters more than anything else here: workers spin briefly
// on an atomic job word before sleeping, and the calling thread takes a share
// of the work itself.
//
// A parallel_for is cut into a few chunks per thread, and each thread is
// given a contiguous share of them, which it claims one by one from a cache
// line of its own; a thread whose share is done takes chunks from the far
// end of the others'. On a busy machine a worker may get its core only
// milliseconds after a loop starts; the caller then runs that worker's
// share itself and waits only for chunks already claimed, never for a
// thread that has not shown up, so a token's few hundred loops do not each
// cost a scheduler time slice.
//
// Why shares of their own: every cache line one core writes and another
// reads is passed between the cores, and on the development VM that costs
// about 250 ns (a round trip between its two cores: 490 ns). With one job
// word that every claim changed and one shared count of finished chunks,
// each chunk cost two such transfers, about 0.5 us against the 2 us of work
// in a chunk of an 8-row 768 × 768 q8 product. Now a loop costs a few
// transfers whatever its number of chunks: the job word and the loop
// (workers), the worker's share, and one count per worker at the end.
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
  // A null reference (calling it is undefined): for members assigned later.
  FunctionRef() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit, as std::function
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...); }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_ = nullptr;
  R (*call_)(void*, Args...) = nullptr;
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
  // are done. Thread t starts on the t-th contiguous part of the ranges (the
  // caller on the first). Runs inline when n is small or the pool has one
  // thread. fn must not depend on which thread runs a range. Not re-entrant:
  // fn must not call parallel_for on this pool.
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);

  // Calls fn(thread_index, thread_count) once on every thread of the pool,
  // concurrently (waits for every worker: for measuring the machine, not for
  // model work).
  void run_on_all(FunctionRef<void(int, int)> fn);

  // Chunks per thread: enough that a thread whose share ends early (its
  // chunks were cheaper, or the other's core was taken by another process)
  // takes over part of another's. (When each chunk cost two transfers
  // between the cores, 16 ran the 125M q8 decode at 238 tokens/s and 8 at
  // 281; 4 did no better than 8.)
  static constexpr int kChunksPerThread = 8;

  // The number of physical cores of this machine (not hyper-threads).
  static int physical_cores();
  // A process-wide pool, created on first use with `threads` threads (later
  // calls with a different positive count recreate it).
  static ThreadPool& global(int threads = 0);

 private:
  // The job word: generation (32 bits) | kind (bit 31: run_on_all). Workers
  // wait for its generation to change.
  static constexpr uint64_t kAllKind = uint64_t{1} << 31;
  static constexpr int64_t kMaxChunks = (1 << 16) - 1;
  static uint32_t job_generation(uint64_t word) { return static_cast<uint32_t>(word >> 32); }

  // The loop being run: chunk c is fn over its part of [0, n).
  struct Loop {
    int64_t n = 0, grain = 1, units = 0, chunks = 0;
    FunctionRef<void(int64_t, int64_t)> fn;
    void run(int64_t c) const;
  };

  // A thread's share of the current loop's chunks, [next, end), with the
  // loop's generation in one word, generation (32) | next (16) | end (16),
  // so that a claim of a loop that has ended fails. The owner claims from
  // the front, the others from the back, each with a compare-exchange of
  // the word; on a line of its own, so that the owner's claims stay in its
  // core's cache.
  struct alignas(64) Share {
    std::atomic<uint64_t> word{0};
  };
  static uint64_t share_word(uint32_t generation, int64_t next, int64_t end) {
    return uint64_t{generation} << 32 | static_cast<uint64_t>(next) << 16 | static_cast<uint64_t>(end);
  }
  // A chunk of loop `generation` claimed from `share` (its front or back),
  // or -1 when the share has none left or belongs to another loop.
  static int64_t claim(Share& share, uint32_t generation, bool front);

  void worker_loop(int index);
  void publish(uint64_t word);
  // Runs chunks of loop `generation`, thread `self`'s share first, until
  // none is left anywhere; returns how many it ran.
  int64_t run_chunks(int self, uint32_t generation);

  std::vector<std::thread> workers_;
  std::vector<Share> shares_;  // one per thread, the caller's first
  const FunctionRef<void(int, int)>* all_job_ = nullptr;  // run_on_all's fn
  // On lines of their own: the loop (written by the caller before the job
  // word, read by a worker only once it has claimed a chunk), the job word
  // (polled by the workers) and the count of chunks the workers have run
  // (polled by the caller; each worker adds to it once per loop).
  alignas(64) Loop loop_;
  alignas(64) std::atomic<uint64_t> job_word_{0};
  alignas(64) std::atomic<int64_t> chunks_done_{0};
  alignas(64) std::atomic<int> pending_{0};  // workers yet to finish a run_on_all
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex dispatch_mutex_;  // one loop at a time when several threads share the pool
};

}  // namespace gptneo
