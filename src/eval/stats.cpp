#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "eval/python_random.h"
#include "gptneo/error.h"

namespace gptneo::eval {

// Sums run left to right in double precision, as Python's sum() of floats
// (before 3.12) does, so that values agree with the harness to the last bits.
double mean(std::span<const double> xs) {
  if (xs.empty()) return 0;
  double sum = 0;
  for (const double x : xs) sum += x;
  return sum / static_cast<double>(xs.size());
}

double sample_stddev(std::span<const double> xs) {
  if (xs.size() < 2) return 0;
  const double mu = mean(xs);
  double sq = 0;
  for (const double x : xs) sq += (x - mu) * (x - mu);
  return std::sqrt(sq / static_cast<double>(xs.size() - 1));
}

double mean_stderr(std::span<const double> xs) {
  if (xs.empty()) return 0;
  return sample_stddev(xs) / std::sqrt(static_cast<double>(xs.size()));
}

double perplexity(std::span<const double> loglikelihoods) { return std::exp(-mean(loglikelihoods)); }

double weighted_mean(std::span<const std::pair<double, double>> items) {
  double a = 0, b = 0;
  for (const auto& [x, w] : items) a += x, b += w;
  return b == 0 ? 0 : a / b;
}

double bootstrap_perplexity_stderr(std::span<const double> lls, int64_t iters, int threads) {
  if (iters <= 0) throw Error("bootstrap: the number of iterations must be positive");
  if (lls.size() < 2) return 0;
  const int64_t chunk = std::min<int64_t>(1000, iters);
  const int64_t chunks = iters / chunk;
  const auto n = static_cast<int64_t>(lls.size());
  std::vector<double> replicates(static_cast<size_t>(chunks * chunk));
  ThreadPool pool(threads);
  pool.parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      PythonRandom rnd(static_cast<uint32_t>(c));
      for (int64_t r = 0; r < chunk; ++r) {
        double sum = 0;
        for (int64_t k = 0; k < n; ++k) sum += lls[static_cast<size_t>(rnd.choice_index(n))];
        replicates[static_cast<size_t>(c * chunk + r)] = std::exp(-(sum / static_cast<double>(n)));
      }
    }
  });
  return sample_stddev(replicates);
}

}  // namespace gptneo::eval
