// Kernel throughput (Google Benchmark): linear in every weight format for
// one row (decode: bound by bandwidth, reported as bytes/s of weights) and
// for many rows (prefill: bound by arithmetic, reported as FLOP/s), and the
// attention primitives. The kernel set is the one GPTNEO_ISA picks.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace {

using gptneo::Matrix;
using gptneo::WeightFormat;

gptneo::ThreadPool& pool() {
  static gptneo::ThreadPool p(0);
  return p;
}

std::vector<float> random_values(size_t n) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Weights as the model loader keeps them: converted, then in the layout the
// kernel set's products read fastest (q8 / q4 octets on AVX512-VNNI).
Matrix weights(int64_t rows, int64_t cols, WeightFormat f) {
  Matrix m = gptneo::make_f32_matrix(rows, cols);
  const auto v = random_values(static_cast<size_t>(rows * cols));
  std::copy(v.begin(), v.end(), const_cast<float*>(m.f32()));
  return gptneo::kernels::arranged_for_products(gptneo::convert_matrix(m, f, &pool()), &pool());
}

// args: weight format, rows of x. A 2048 × 8192 matrix (the 1.3B MLP).
void BM_Linear(benchmark::State& state) {
  const auto f = static_cast<WeightFormat>(state.range(0));
  const int64_t m = state.range(1), n = 8192, k = 2048;
  const Matrix w = weights(n, k, f);
  const auto x = random_values(static_cast<size_t>(m * k));
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    gptneo::kernels::linear(x.data(), m, w, nullptr, y.data(), pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(gptneo::weight_format_name(f) + " " + gptneo::kernels::isa_name());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes()));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Linear)
    ->ArgsProduct({{int(WeightFormat::F32), int(WeightFormat::BF16), int(WeightFormat::Q8), int(WeightFormat::Q4)},
                   {1, 8, 128}})
    ->UseRealTime();

// What a loop costs the pool, beyond its work: an empty parallel_for of 16
// chunks (2 threads: a handful of cache lines passed between the cores), and
// an 8-row 768 × 768 q8 product (batch-8 decode's out projection, weights in
// L2), whose 2 µs chunks each cost two such passes when the chunks were
// claimed on one shared word (2026-12-07: 22-24 µs on 2 threads against
// 27 on one; see docs/performance.md, Threads).
void BM_ParallelForEmpty(benchmark::State& state) {
  for (auto _ : state) pool().parallel_for(16, 1, [](int64_t, int64_t) {});
}
BENCHMARK(BM_ParallelForEmpty)->UseRealTime();

void BM_LinearOutProjectionBatch8(benchmark::State& state) {
  const int64_t m = 8, n = 768, k = 768;
  const Matrix w = weights(n, k, WeightFormat::Q8);
  const auto x = random_values(static_cast<size_t>(m * k));
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    gptneo::kernels::linear(x.data(), m, w, nullptr, y.data(), pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(gptneo::kernels::isa_name());
}
BENCHMARK(BM_LinearOutProjectionBatch8)->Unit(benchmark::kMicrosecond)->UseRealTime();

// A decode step's layer products at gpt-neo-125M's shapes: 12 layers of
// qkv (2304 × 768), out (768 × 768), fc (3072 × 768) and proj (768 ×
// 3072), multiplied in turn, so that every matrix comes from memory (91 MB
// in q8, more than the caches) as it does when decoding. args: weight
// format, rows of x (1: one sequence; 8: batched decode). Reported as
// bytes/s of weights. Run it after any change to the kernels: a change that
// leaves every result the same can still halve this (a prefetch loop that
// stopped unrolling once took the 8-row products from 17-22 to 11 GB/s).
void BM_DecodeStepProducts(benchmark::State& state) {
  const auto f = static_cast<WeightFormat>(state.range(0));
  const int64_t m = state.range(1);
  const int64_t shapes[4][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
  std::vector<Matrix> layers;
  size_t bytes = 0;
  for (int layer = 0; layer < 12; ++layer)
    for (const auto& s : shapes) {
      layers.push_back(weights(s[0], s[1], f));
      bytes += layers.back().bytes();
    }
  const auto x = random_values(static_cast<size_t>(m * 3072));
  std::vector<float> y(static_cast<size_t>(m * 3072));
  for (auto _ : state) {
    for (const Matrix& w : layers) gptneo::kernels::linear(x.data(), m, w, nullptr, y.data(), pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(gptneo::weight_format_name(f) + " " + gptneo::kernels::isa_name());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_DecodeStepProducts)
    ->ArgsProduct({{int(WeightFormat::BF16), int(WeightFormat::Q8), int(WeightFormat::Q4)}, {1, 8}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One query against n cached keys of one 64-wide head, keys in the KV
// cache's tiles (kernels::attention_scores_tiled) and values one after
// another: scores, softmax, weighted values, as decoding does.
void BM_AttentionHead(benchmark::State& state) {
  const int64_t n = state.range(0), d = 64;
  const int64_t tiles = (n + gptneo::kernels::kKeyTile - 1) / gptneo::kernels::kKeyTile;
  const auto keys = random_values(static_cast<size_t>(tiles * gptneo::kernels::kKeyTile * d));
  const auto values = random_values(static_cast<size_t>(n * d)), q = random_values(static_cast<size_t>(d));
  std::vector<float> scores(static_cast<size_t>(n)), out(static_cast<size_t>(d));
  for (auto _ : state) {
    gptneo::kernels::attention_scores_tiled(q.data(), d, 1, keys.data(), 0, n, d, 1.0f, scores.data(), n);
    gptneo::kernels::softmax(scores.data(), n);
    gptneo::kernels::attention_values(scores.data(), n, 1, values.data(), d, n, d, out.data(), d);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(4.0 * n * d, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionHead)->Arg(256)->Arg(2048);

// A prompt's attention: 64 queries of one 64-wide head against n keys in
// tiles, scores and weighted values for all of them at once (what
// prefill does per block of queries).
void BM_AttentionQueryBlock(benchmark::State& state) {
  const int64_t n = state.range(0), d = 64, m = 64;
  const int64_t tiles = (n + gptneo::kernels::kKeyTile - 1) / gptneo::kernels::kKeyTile;
  const auto keys = random_values(static_cast<size_t>(tiles * gptneo::kernels::kKeyTile * d));
  const auto values = random_values(static_cast<size_t>(n * d)), q = random_values(static_cast<size_t>(m * d));
  std::vector<float> scores(static_cast<size_t>(m * n)), out(static_cast<size_t>(m * d));
  for (auto _ : state) {
    gptneo::kernels::attention_scores_tiled(q.data(), d, m, keys.data(), 0, n, d, 1.0f, scores.data(), n);
    for (int64_t r = 0; r < m; ++r) gptneo::kernels::softmax(scores.data() + r * n, n);
    gptneo::kernels::attention_values(scores.data(), n, m, values.data(), d, n, d, out.data(), d);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(4.0 * m * n * d, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionQueryBlock)->Arg(256)->Arg(2048);

}  // namespace
