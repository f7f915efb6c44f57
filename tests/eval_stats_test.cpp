// The harness's statistics: stderr formulas, CPython's random, the bootstrap.
// Expected values were computed with CPython 3.11 (random, math) running the
// harness's definitions from lm_eval/api/metrics.py.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "eval/python_random.h"
#include "eval/stats.h"

namespace gptneo::eval {
namespace {

const std::vector<double> kLls = {-1.5, -0.25, -3.0, -2.125, -0.75, -4.5, -1.0, -2.0, -0.5, -6.0, -1.25, -3.5};

TEST(EvalStats, MeanStderrIsSampleStddevOverRootN) {
  // Hand-made: values 1, 2, 3, 4 have mean 2.5, sum of squares 5, sample
  // variance 5/3, stderr sqrt(5/3)/2.
  const std::vector<double> xs = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(mean(xs), 2.5);
  EXPECT_DOUBLE_EQ(sample_stddev(xs), std::sqrt(5.0 / 3.0));
  EXPECT_DOUBLE_EQ(mean_stderr(xs), std::sqrt(5.0 / 3.0) / 2.0);
  // An accuracy: 3 right of 4 -> p = 0.75, stderr sqrt(p(1-p) n/(n-1) / n).
  const std::vector<double> acc = {1, 0, 1, 1};
  EXPECT_NEAR(mean_stderr(acc), std::sqrt(0.75 * 0.25 * 4.0 / 3.0 / 4.0), 1e-15);
  EXPECT_DOUBLE_EQ(mean_stderr(std::vector<double>{1.0}), 0.0);
  EXPECT_NEAR(mean_stderr(kLls), 0.5055230783080237, 1e-15);
}

TEST(EvalStats, PerplexityAggregations) {
  EXPECT_NEAR(perplexity(kLls), 9.006230959915749, 1e-12);
  const std::vector<std::pair<double, double>> items = {{-10, 4}, {-6, 4}};
  EXPECT_DOUBLE_EQ(weighted_mean(items), -2.0);
}

TEST(EvalStats, PythonRandomMatchesCPython) {
  PythonRandom r0(0);
  EXPECT_EQ(r0.random(), 0.8444218515250481);
  EXPECT_EQ(r0.random(), 0.7579544029403025);
  EXPECT_EQ(r0.random(), 0.420571580830845);
  PythonRandom r(12345);  // random.Random(12345).getrandbits(32) x 3
  EXPECT_EQ(r.next_u32(), 1789368711u);
  EXPECT_EQ(r.next_u32(), 3146859322u);
  EXPECT_EQ(r.next_u32(), 43676229u);
  PythonRandom c(1);  // random.Random(1).choices(range(1000), k=5)
  for (const int64_t expected : {134, 847, 763, 255, 495}) EXPECT_EQ(c.choice_index(1000), expected);
}

TEST(EvalStats, BootstrapStderrMatchesTheHarness) {
  // 2 chunks of 1000 resamples (seeds 0 and 1), and 1 chunk of 500.
  EXPECT_NEAR(bootstrap_perplexity_stderr(kLls, 2000, 2), 5.747610820479902, 1e-9);
  EXPECT_NEAR(bootstrap_perplexity_stderr(kLls, 500, 1), 6.324358866974024, 1e-9);
  // The thread count does not change the result.
  EXPECT_EQ(bootstrap_perplexity_stderr(kLls, 2000, 1), bootstrap_perplexity_stderr(kLls, 2000, 2));
}

}  // namespace
}  // namespace gptneo::eval
