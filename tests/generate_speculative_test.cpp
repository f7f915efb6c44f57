// Speculative decoding: the acceptance rule reproduces the target
// distribution (on a toy pair of distributions), and greedy output is the
// same with and without a draft model.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "test_support.h"

namespace gptneo {
namespace {

Model& mini() {
  static std::unique_ptr<Model> m = Model::load(test::neo_trained_dir());
  return *m;
}
// The same model object drafting for itself (calls are sequential).
Model& mini_draft() { return mini(); }
Model& tiny() {
  static std::unique_ptr<Model> m = Model::load(test::neo_tiny_dir());
  return *m;
}

TEST(GenerateSpeculative, AcceptanceRuleOutputIsDistributedAsTheTarget) {
  const Distribution p{{0, 1, 2, 3}, {0.5, 0.3, 0.2, 0.0}};
  const Distribution q{{0, 1, 2, 3}, {0.1, 0.2, 0.3, 0.4}};
  Rng rng(1234);
  const int n = 200000;
  std::vector<int> count(4, 0);
  int accepted = 0;
  for (int i = 0; i < n; ++i) {
    const TokenId x = q.sample(rng);
    const SpeculativeVerdict v = speculative_accept(p, q, x, rng);
    ++count[v.token];
    accepted += v.accepted;
  }
  for (int t = 0; t < 4; ++t) {
    const double expected = p.probs[t];
    const double sigma = std::sqrt(expected * (1 - expected) / n);
    EXPECT_NEAR(count[t] / double(n), expected, 5 * sigma + 1e-9) << "token " << t;
  }
  EXPECT_EQ(count[3], 0) << "a token the target never emits";
  // The acceptance rate is sum(min(p, q)) = 0.1 + 0.2 + 0.2 = 0.5.
  EXPECT_NEAR(accepted / double(n), 0.5, 0.005);
}

TEST(GenerateSpeculative, AcceptanceRuleWithDisjointSupportsFallsBackToTheTarget) {
  const Distribution p{{5}, {1.0}};
  const Distribution q{{7}, {1.0}};
  Rng rng(1);
  const SpeculativeVerdict v = speculative_accept(p, q, 7, rng);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.token, 5);
}

GenerateOptions greedy(int64_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.greedy = true;
  o.stop_at_eos = false;
  return o;
}

TEST(GenerateSpeculative, GreedyIsIdenticalWithTheModelDraftingForItself) {
  const Tokenizer tok = Tokenizer::load(test::neo_trained_dir());
  const auto prompt = tok.encode("Once upon a time");
  const GenerateOptions o = greedy(40);
  const auto plain = generate(mini(), &tok, prompt, o);
  const auto spec = generate(mini(), &tok, prompt, o, {}, &mini_draft());
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_EQ(spec.choices[0].text, plain.choices[0].text);
  EXPECT_GT(spec.draft_proposed, 0);
  // The same model proposes what it would choose: (nearly) all accepted, so
  // each target pass yields several tokens.
  EXPECT_GE(spec.draft_accepted, spec.draft_proposed * 9 / 10);
  EXPECT_LT(spec.target_passes, 20);
}

TEST(GenerateSpeculative, GreedyIsIdenticalWithADifferentDraftThatIsOftenWrong) {
  // neo-tiny (random weights, same vocabulary) drafts for neo-mini: most
  // drafts are rejected, and the output must still be neo-mini's own.
  const std::vector<TokenId> prompt = {7454, 2402, 257, 640};
  const GenerateOptions o = greedy(30);
  const auto plain = generate(mini(), prompt, o);
  const auto spec = generate(mini(), nullptr, prompt, o, {}, &tiny());
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_LT(spec.draft_accepted, spec.draft_proposed);
}

TEST(GenerateSpeculative, SampledWithADraftIsReproducibleAndHonoursStops) {
  const Tokenizer tok = Tokenizer::load(test::neo_trained_dir());
  GenerateOptions o;
  o.max_new_tokens = 30;
  o.seed = 11;
  o.sampling.temperature = 0.9f;
  o.stop_at_eos = false;
  const auto prompt = tok.encode("The meaning of life is");
  const auto a = generate(mini(), &tok, prompt, o, {}, &mini_draft());
  const auto b = generate(mini(), &tok, prompt, o, {}, &mini_draft());
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 30u);
  o.num_return_sequences = 2;
  EXPECT_THROW(generate(mini(), &tok, prompt, o, {}, &mini_draft()), Error);
}

TEST(GenerateSpeculative, CliReportsAcceptanceInTimings) {
  const std::string mini_dir = test::neo_trained_dir().string();
  const auto r = test::run_cli({"-q", "generate", "-p", "Once upon a time", "-n", "20", "--greedy", "--json",
                                "--draft-model", mini_dir, "--draft-tokens", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto plain = test::run_cli({"-q", "generate", "-p", "Once upon a time", "-n", "20", "--greedy", "--json"});
  EXPECT_EQ(j["tokens"], nlohmann::json::parse(plain.out)["tokens"]);
  EXPECT_GT(j["timings"]["acceptance_rate"].get<double>(), 0.5);
  EXPECT_TRUE(j["timings"].contains("tokens_per_target_pass"));
}

}  // namespace
}  // namespace gptneo
