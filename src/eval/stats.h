// The harness's aggregations and standard errors (lm_eval/api/metrics.py):
// means with the sample standard error of the mean, the perplexity
// aggregations, and its bootstrap for perplexity.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

namespace gptneo::eval {

double mean(std::span<const double> xs);
// sqrt(sum((x - mean)^2) / (n - 1)); 0 for fewer than 2 values.
double sample_stddev(std::span<const double> xs);
// sample_stddev / sqrt(n): the harness's stderr for every "mean" metric.
double mean_stderr(std::span<const double> xs);

// exp(-mean(loglikelihoods)): lambada's perplexity.
double perplexity(std::span<const double> loglikelihoods);
// sum(ll) / sum(weight), the harness's weighted_mean over (ll, weight) items.
double weighted_mean(std::span<const std::pair<double, double>> items);

// The harness's bootstrap_stderr(perplexity, lls, iters): iters // 1000
// chunks (one of `iters` when fewer) of resamples with replacement, chunk i
// drawn by random.Random(i).choices(lls, k=n), then the sample standard
// deviation of the resampled perplexities. Chunks run on `threads` threads;
// the result does not depend on their number.
double bootstrap_perplexity_stderr(std::span<const double> loglikelihoods, int64_t iters, int threads = 0);

}  // namespace gptneo::eval
