#include "core/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GPTNEO_PAUSE() _mm_pause()
#else
#define GPTNEO_PAUSE() ((void)0)
#endif

namespace gptneo {

namespace {
// How long a worker waits for the next loop before it sleeps: long enough to
// bridge the gap between the loops of one forward pass.
constexpr int kSpinIterations = 1 << 16;
// Busy-waiting only pays while every thread has a core of its own. On a
// shared machine a waiting thread may hold the core its partner needs, so
// after a short spin it yields the core on every further check.
constexpr int kSpinBeforeYield = 2000;

inline void pause_or_yield(int spins) {
  if (spins < kSpinBeforeYield)
    GPTNEO_PAUSE();
  else
    std::this_thread::yield();
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = physical_cores();
  shares_ = std::vector<Share>(static_cast<size_t>(threads));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  publish(job_word_.load() + (uint64_t{1} << 32));  // wakes everyone; they see stop_
  for (auto& t : workers_) t.join();
}

// Makes `word` the current job and wakes the sleeping workers. Storing under
// the mutex means a worker about to sleep cannot miss it.
void ThreadPool::publish(uint64_t word) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_word_.store(word, std::memory_order_release);
  }
  wake_.notify_all();
}

void ThreadPool::Loop::run(int64_t c) const {
  // Spread the units as evenly as possible over the chunks.
  const int64_t begin = units * c / chunks * grain;
  const int64_t end = std::min(n, units * (c + 1) / chunks * grain);
  if (begin < end) fn(begin, end);
}

int64_t ThreadPool::claim(Share& share, uint32_t generation, bool front) {
  uint64_t word = share.word.load(std::memory_order_acquire);
  for (;;) {
    if (job_generation(word) != generation) return -1;
    const auto next = static_cast<int64_t>((word >> 16) & 0xFFFF), end = static_cast<int64_t>(word & 0xFFFF);
    if (next >= end) return -1;
    const uint64_t claimed = front ? share_word(generation, next + 1, end) : share_word(generation, next, end - 1);
    // On failure `word` holds the current value.
    if (share.word.compare_exchange_weak(word, claimed, std::memory_order_acq_rel, std::memory_order_acquire))
      return front ? next : end - 1;
  }
}

// A successful claim means the loop is still running (its caller waits for
// every chunk), so loop_ is the claimed chunk's loop until the chunk is done.
int64_t ThreadPool::run_chunks(int self, uint32_t generation) {
  const int threads = size();
  int64_t ran = 0;
  for (int k = 0; k < threads; ++k) {
    Share& share = shares_[static_cast<size_t>((self + k) % threads)];
    for (int64_t c; (c = claim(share, generation, k == 0)) >= 0; ++ran) loop_.run(c);
  }
  return ran;
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;
  for (;;) {
    int spins = 0;
    while (job_generation(job_word_.load(std::memory_order_acquire)) == seen && spins < kSpinIterations) {
      pause_or_yield(spins);
      ++spins;
    }
    uint64_t word = job_word_.load(std::memory_order_acquire);
    if (job_generation(word) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return job_generation(job_word_.load(std::memory_order_acquire)) != seen; });
      word = job_word_.load(std::memory_order_acquire);
    }
    seen = job_generation(word);
    if (stop_.load()) return;
    if (word & kAllKind) {
      // run_on_all: the caller waits for this worker, so the job is still current.
      (*all_job_)(index, size());
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    } else if (const int64_t ran = run_chunks(index, seen); ran > 0) {
      chunks_done_.fetch_add(ran, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::run_on_all(FunctionRef<void(int, int)> fn) {
  if (workers_.empty()) return fn(0, 1);
  std::lock_guard<std::mutex> guard(dispatch_mutex_);
  all_job_ = &fn;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_release);
  const uint32_t generation = job_generation(job_word_.load()) + 1;
  publish((uint64_t{generation} << 32) | kAllKind);
  fn(0, size());
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) pause_or_yield(spins);
  all_job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t units = (n + grain - 1) / grain;
  const int64_t chunks = std::min<int64_t>({units, int64_t{kChunksPerThread} * size(), kMaxChunks});
  if (workers_.empty() || chunks <= 1) return fn(0, n);
  std::lock_guard<std::mutex> guard(dispatch_mutex_);
  loop_ = Loop{n, grain, units, chunks, fn};
  chunks_done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = job_generation(job_word_.load()) + 1;
  const auto threads = static_cast<int64_t>(size());
  for (int64_t t = 0; t < threads; ++t)
    shares_[static_cast<size_t>(t)].word.store(share_word(generation, chunks * t / threads, chunks * (t + 1) / threads),
                                               std::memory_order_release);
  publish(uint64_t{generation} << 32);
  const int64_t mine = run_chunks(0, generation);
  // Every chunk is claimed now; wait for those the workers are running.
  for (int spins = 0; chunks_done_.load(std::memory_order_acquire) + mine != chunks; ++spins) pause_or_yield(spins);
}

int ThreadPool::physical_cores() {
  // Count distinct (package, core) pairs: hyper-threads share a core and
  // gain little on these bandwidth- and FMA-bound loops.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") physical = value;
    if (key == "core id") cores.emplace(physical, value);
  }
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  if (cores.empty()) return std::max(1, hw);
  return std::max(1, std::min<int>(static_cast<int>(cores.size()), hw > 0 ? hw : 1 << 20));
}

ThreadPool& ThreadPool::global(int threads) {
  static std::unique_ptr<ThreadPool> pool;
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  if (!pool || (threads > 0 && threads != pool->size())) pool = std::make_unique<ThreadPool>(threads);
  return *pool;
}

}  // namespace gptneo
