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
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      pause_or_yield(spins);
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    (*job_)(index, size());
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::dispatch(FunctionRef<void(int, int)> job) {
  std::lock_guard<std::mutex> guard(dispatch_mutex_);
  job_ = &job;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  job(0, size());
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) pause_or_yield(spins);
  job_ = nullptr;
}

void ThreadPool::run_on_all(FunctionRef<void(int, int)> fn) {
  if (workers_.empty()) return fn(0, 1);
  dispatch(fn);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t units = (n + grain - 1) / grain;
  const int64_t parts = std::min<int64_t>(units, size());
  if (parts <= 1) return fn(0, n);
  const auto job = [&](int index, int) {
    if (index >= parts) return;
    // Spread the units as evenly as possible over the parts.
    const int64_t begin = units * index / parts * grain;
    const int64_t end = std::min(n, units * (index + 1) / parts * grain);
    if (begin < end) fn(begin, end);
  };
  dispatch(job);
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
