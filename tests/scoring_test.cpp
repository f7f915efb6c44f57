// Scoring: token NLL, and the sliding-window perplexity checked against the
// same windows scored one by one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gptneo/error.h"
#include "gptneo/scoring.h"
#include "test_support.h"

namespace gptneo {
namespace {

TEST(Scoring, TokenNllIsTheNegativeLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token_nll(logits, 0), z - 1.0, 1e-12);
  EXPECT_NEAR(token_nll(logits, 2), z - 3.0, 1e-12);
  // Large logits do not overflow.
  const std::vector<float> big = {1000.0f, 0.0f};
  EXPECT_NEAR(token_nll(big, 1), 1000.0, 1e-9);
  EXPECT_THROW(token_nll(logits, 3), Error);
}

class SlidingWindow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::neo_tiny_dir()).release(); }
  static void TearDownTestSuite() { delete model_; }
  static Model* model_;
};
Model* SlidingWindow::model_ = nullptr;

// Sum of NLLs of tokens [from, to) of `ids`, each scored by a window of the
// text starting at `begin`.
double window_nll(Model& m, const std::vector<TokenId>& ids, size_t begin, size_t end, size_t from) {
  const std::vector<TokenId> w(ids.begin() + begin, ids.begin() + end);
  const TokenScores s = score_tokens(m, w);
  double sum = 0;
  for (size_t t = from; t < end; ++t) sum += s.nll[t - begin - 1];
  return sum;
}

TEST_F(SlidingWindow, EqualsTheWindowsScoredOneByOne) {
  std::mt19937 rng(9);
  std::vector<TokenId> ids(300);
  for (auto& t : ids) t = static_cast<TokenId>(rng() % 50257);
  PerplexityOptions o;
  o.context = 100;
  o.stride = 40;
  const PerplexityResult r = perplexity(*model_, ids, o);
  // Windows start at 0, 40, ..., 200 (the one reaching the end is the last);
  // each scores the tokens past the previous window's end.
  double expected = window_nll(*model_, ids, 0, 100, 1);
  size_t prev_end = 100;
  int windows = 1;
  for (size_t begin = 40; prev_end < ids.size(); begin += 40, ++windows) {
    const size_t end = std::min(begin + 100, ids.size());
    expected += window_nll(*model_, ids, begin, end, prev_end);
    prev_end = end;
  }
  EXPECT_EQ(r.windows, windows);
  EXPECT_EQ(r.tokens_scored, 299);
  EXPECT_NEAR(r.nll_sum, expected, 1e-6 * expected);
  EXPECT_NEAR(r.perplexity, std::exp(expected / 299), 1e-9 * r.perplexity);
}

TEST_F(SlidingWindow, WindowLimitAndBadOptions) {
  std::vector<TokenId> ids(250, 11);
  PerplexityOptions o;
  o.context = 100;
  o.max_windows = 2;
  const PerplexityResult r = perplexity(*model_, ids, o);
  EXPECT_EQ(r.windows, 2);
  // Non-overlapping windows: the first token of each has no context in
  // its window and is not scored (as in the reference's 8 × 1023 tokens).
  EXPECT_EQ(r.tokens_scored, 99 + 99);
  o.context = 200;
  o.stride = 300;
  EXPECT_THROW(perplexity(*model_, ids, o), Error);
  o.stride = 0;
  o.context = 129;
  EXPECT_THROW(perplexity(*model_, ids, o), Error);
  EXPECT_THROW(perplexity(*model_, std::vector<TokenId>{5}, PerplexityOptions{}), Error);
}

}  // namespace
}  // namespace gptneo
