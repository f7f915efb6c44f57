// Measuring what the machine can do, so that benchmark results can be given
// as fractions of its limits (gptneo bench --bandwidth / --limits).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include "kernels/kernel_set.h"
#include "kernels/kernels.h"

namespace gptneo::kernels {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
  // Each thread touches its own part first (pages land near the thread).
  pool.parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t b, int64_t e) {
    std::memset(buf.get() + b, 0, static_cast<size_t>(e - b) * sizeof(float));
  });
  const KernelSet& ks = active();
  std::atomic<float> sink{0};
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t b, int64_t e) {
      sink.store(ks.sum(buf.get() + b, e - b), std::memory_order_relaxed);
    });
    best = std::max(best, static_cast<double>(n * sizeof(float)) / seconds_since(t0));
  }
  return best;
}

namespace {

// The best of three runs of `loop` on every thread, in operations per second.
double measure_loop_rate(ThreadPool& pool, double (*loop)(int64_t)) {
  constexpr int64_t kIters = 20'000'000;
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::atomic<double> flops{0};
    const auto t0 = std::chrono::steady_clock::now();
    pool.run_on_all([&](int, int) {
      const double f = loop(kIters);
      double cur = flops.load();
      while (!flops.compare_exchange_weak(cur, cur + f)) {
      }
    });
    best = std::max(best, flops.load() / seconds_since(t0));
  }
  return best;
}

}  // namespace

double measure_fma_peak(ThreadPool& pool) { return measure_loop_rate(pool, active().fma_loop); }

double measure_bf16_peak(ThreadPool& pool) {
  const KernelSet& ks = active();
  return ks.bf16_dot_loop ? measure_loop_rate(pool, ks.bf16_dot_loop) : 0.0;
}

double measure_int8_peak(ThreadPool& pool) {
  const KernelSet& ks = active();
  return ks.int8_dot_loop ? measure_loop_rate(pool, ks.int8_dot_loop) : 0.0;
}

}  // namespace gptneo::kernels
