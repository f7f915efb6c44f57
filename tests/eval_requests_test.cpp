// The token-level shapes of the harness's requests: truncation from the left
// and rolling windows.
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "eval/batch_scorer.h"
#include "eval/requests.h"
#include "gptneo/error.h"

namespace gptneo::eval {
namespace {

std::vector<TokenId> range(int from, int to) {
  std::vector<TokenId> v(static_cast<size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(EvalRequests, ShortRequestKeepsEverything) {
  const ScoreRequest r = make_request(range(0, 5), range(5, 8), 16);
  EXPECT_EQ(r.tokens, range(0, 8));
  EXPECT_EQ(r.scored, 3);
  EXPECT_EQ(r.input_length(), 7);
  EXPECT_EQ(r.first_scored_position(), 4);  // input position 4 predicts token 5
}

TEST(EvalRequests, LongContextIsCutFromTheLeft) {
  // (context + continuation)[-(max_length + 1):]; the model reads all but the last.
  const ScoreRequest r = make_request(range(0, 20), range(20, 23), 8);
  EXPECT_EQ(r.tokens, range(14, 23));
  EXPECT_EQ(r.input_length(), 8);
  EXPECT_EQ(r.scored, 3);
}

TEST(EvalRequests, ContinuationFillingTheWholeWindow) {
  const ScoreRequest r = make_request(range(0, 4), range(4, 12), 8);
  EXPECT_EQ(r.tokens, range(3, 12));  // one context token is left to predict the first
  EXPECT_EQ(r.first_scored_position(), 0);
  EXPECT_THROW(make_request(range(0, 4), range(4, 13), 8), Error);
  EXPECT_THROW(make_request(range(0, 4), std::vector<TokenId>{}, 8), Error);
}

TEST(EvalRequests, RollingWindowsOfTheHarness) {
  // 34 tokens, windows of 10: the first predicts 0..9 from the prefix token,
  // the next ones 10..19 and 20..29 from the 10 tokens before them, the last
  // 30..33 reading 23..32.
  const auto w = rolling_windows(range(0, 34), -100, 10);
  ASSERT_EQ(w.size(), 4u);
  std::vector<TokenId> first = {-100};
  for (TokenId t : range(0, 10)) first.push_back(t);
  EXPECT_EQ(w[0].tokens, first);
  EXPECT_EQ(w[0].scored, 10);
  EXPECT_EQ(w[1].tokens, range(9, 20));
  EXPECT_EQ(w[1].scored, 10);
  EXPECT_EQ(w[2].tokens, range(19, 30));
  EXPECT_EQ(w[3].tokens, range(23, 34));
  EXPECT_EQ(w[3].scored, 4);
  EXPECT_TRUE(rolling_windows(std::vector<TokenId>{}, -100, 10).empty());
}

TEST(EvalRequests, RollingWindowsScoreEveryTokenOnce) {
  for (int n : {1, 7, 10, 11, 25, 100}) {
    const auto tokens = range(0, n);
    std::vector<int> times(static_cast<size_t>(n), 0);
    for (const auto& w : rolling_windows(tokens, -1, 10)) {
      EXPECT_LE(w.input_length(), 10);
      for (int64_t i = w.first_scored_position() + 1; i <= w.input_length(); ++i)
        ++times[static_cast<size_t>(w.tokens[static_cast<size_t>(i)])];
    }
    for (int t = 0; t < n; ++t) EXPECT_EQ(times[static_cast<size_t>(t)], 1) << "n=" << n << " token " << t;
  }
}

TEST(EvalRequests, SharedPrefixStopsBeforeScoredPredictions) {
  // Two choices after a 5-token context share the context: positions 0..4,
  // the last of which predicts each choice's first token.
  using V = std::vector<TokenId>;
  const RequestGroup g = {make_request(range(0, 5), V{7, 8}, 16), make_request(range(0, 5), V{9}, 16)};
  EXPECT_EQ(shared_prefix_length(g), 5);
  // Contexts that differ after 3 tokens (Winogrande's shape).
  const RequestGroup w = {make_request(V{1, 2, 3, 4}, V{9, 9}, 16), make_request(V{1, 2, 3, 5}, V{9, 9}, 16)};
  EXPECT_EQ(shared_prefix_length(w), 3);
  EXPECT_EQ(shared_prefix_length({g[0]}), 0);  // nothing to share alone
}

}  // namespace
}  // namespace gptneo::eval
