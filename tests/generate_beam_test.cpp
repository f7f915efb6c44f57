// Beam search: Hugging Face's semantics on toy distributions worked out by
// hand (early_stopping True / False / "never", length_penalty), one beam
// equals greedy, and on neo-tiny the result equals an exhaustive search.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gptneo/generate.h"
#include "test_support.h"

namespace gptneo {
namespace {

// ---- a toy language model ------------------------------------------------------------
// Vocabulary {0: EOS, 1: a, 2: b}; next-token probabilities by prefix.
using Toy = std::map<std::vector<TokenId>, std::vector<double>>;

struct ToyRun {
  std::vector<Choice> choices;
  int steps = 0;
};

ToyRun run_toy(const Toy& toy, const GenerateOptions& o) {
  const DecodeContext ctx{nullptr, 0, 3, 0};
  const std::vector<TokenId> prompt = {1};
  BeamSearch search(o, ctx, prompt);
  ToyRun run;
  while (!search.done()) {
    std::vector<std::vector<float>> rows;
    for (const auto& beam : search.running()) {
      const auto it = toy.find(beam.tokens);
      const std::vector<double> p = it != toy.end() ? it->second : std::vector<double>{0.4, 0.3, 0.3};
      rows.push_back({static_cast<float>(std::log(p[0])), static_cast<float>(std::log(p[1])),
                      static_cast<float>(std::log(p[2]))});
    }
    std::vector<const float*> ptrs;
    for (const auto& r : rows) ptrs.push_back(r.data());
    search.step(ptrs);
    ++run.steps;
  }
  run.choices = search.results();
  return run;
}

GenerateOptions toy_options(EarlyStopping es, float length_penalty = 1.0f) {
  GenerateOptions o;
  o.num_beams = 2;
  o.num_return_sequences = 2;
  o.max_new_tokens = 3;
  o.early_stopping = es;
  o.length_penalty = length_penalty;
  return o;
}

// Step 1: EOS (0.5) ends at once: score log 0.5 / 1. Running: a, b.
// Step 2: a·a = log .3 + log .6, b·EOS = log .2 + log .7 (finished, / 2).
// The two finished slots are full. Heuristic (False): the best running beam
// a·a over the current length 2 still beats b·EOS, so it goes on; step 3
// (max length) finishes a·a·EOS with (log .3 + log .6 + log .9) / 3, the best.
const Toy kToy1 = {
    {{}, {0.5, 0.3, 0.2}},
    {{1}, {0.1, 0.6, 0.3}},
    {{2}, {0.7, 0.2, 0.1}},
    {{1, 1}, {0.9, 0.05, 0.05}},
};

TEST(GenerateBeam, EarlyStoppingTrueStopsOnceNumBeamsHypothesesAreFinished) {
  const ToyRun run = run_toy(kToy1, toy_options(EarlyStopping::Always));
  EXPECT_EQ(run.steps, 2);
  ASSERT_EQ(run.choices.size(), 2u);
  EXPECT_EQ(run.choices[0].tokens, (std::vector<TokenId>{0}));
  EXPECT_NEAR(run.choices[0].score, std::log(0.5), 1e-5);
  EXPECT_EQ(run.choices[1].tokens, (std::vector<TokenId>{2, 0}));
  EXPECT_NEAR(run.choices[1].score, (std::log(0.2) + std::log(0.7)) / 2, 1e-5);
}

TEST(GenerateBeam, EarlyStoppingFalseGoesOnWhileTheBestRunningBeamCanWin) {
  const ToyRun run = run_toy(kToy1, toy_options(EarlyStopping::Heuristic));
  EXPECT_EQ(run.steps, 3);
  ASSERT_EQ(run.choices.size(), 2u);
  EXPECT_EQ(run.choices[0].tokens, (std::vector<TokenId>{1, 1, 0}));
  EXPECT_NEAR(run.choices[0].score, (std::log(0.3) + std::log(0.6) + std::log(0.9)) / 3, 1e-5);
  EXPECT_EQ(run.choices[1].tokens, (std::vector<TokenId>{0}));
  EXPECT_EQ(run.choices[0].finish_reason, FinishReason::Eos);
}

TEST(GenerateBeam, LengthPenaltyZeroScoresBySumAlone) {
  // Sum only: EOS at once (log .5) beats a·a·EOS (sum -1.82).
  const ToyRun run = run_toy(kToy1, toy_options(EarlyStopping::Heuristic, 0.0f));
  EXPECT_EQ(run.choices[0].tokens, (std::vector<TokenId>{0}));
  EXPECT_EQ(run.choices[1].tokens, (std::vector<TokenId>{1, 1, 0}));
  EXPECT_NEAR(run.choices[1].score, std::log(0.3) + std::log(0.6) + std::log(0.9), 1e-5);
}

// Step 2 here: b·EOS (log .2 + log .95, / 2 = -0.830) fills the slots, and
// the running a·a, a·b (log .3 + log .45 = -2.003) over length 2 (-1.0015)
// can't beat it: False stops. "never" divides by the longest length, 3
// (-0.668 > -0.830), goes on, and finds a·a·EOS (-2.108 / 3 = -0.703).
const Toy kToy2 = {
    {{}, {0.5, 0.3, 0.2}},
    {{1}, {0.1, 0.45, 0.45}},
    {{2}, {0.95, 0.03, 0.02}},
    {{1, 1}, {0.9, 0.05, 0.05}},
};

TEST(GenerateBeam, EarlyStoppingNeverUsesTheLongestPossibleLength) {
  const ToyRun heuristic = run_toy(kToy2, toy_options(EarlyStopping::Heuristic));
  EXPECT_EQ(heuristic.steps, 2);
  EXPECT_EQ(heuristic.choices[1].tokens, (std::vector<TokenId>{2, 0}));
  const ToyRun never = run_toy(kToy2, toy_options(EarlyStopping::Never));
  EXPECT_EQ(never.steps, 3);
  EXPECT_EQ(never.choices[0].tokens, (std::vector<TokenId>{0}));
  EXPECT_EQ(never.choices[1].tokens, (std::vector<TokenId>{1, 1, 0}));
  EXPECT_NEAR(never.choices[1].score, (std::log(0.3) + std::log(0.45) + std::log(0.9)) / 3, 1e-5);
}

// ---- on neo-tiny ------------------------------------------------------------------------

Model& tiny() {
  static std::unique_ptr<Model> m = Model::load(test::neo_tiny_dir());
  return *m;
}

TEST(GenerateBeam, OneBeamEqualsGreedy) {
  const std::vector<TokenId> prompt = {5688, 318, 257};
  GenerateOptions greedy;
  greedy.max_new_tokens = 12;
  greedy.sampling.greedy = true;
  greedy.stop_at_eos = false;
  const auto g = generate(tiny(), prompt, greedy);
  // BeamSearch with one beam, stepped over the model.
  GenerateOptions o = greedy;
  o.num_beams = 1;
  const DecodeContext ctx = decode_context(tiny(), nullptr, o);
  BeamSearch search(o, ctx, prompt);
  KVCache cache = tiny().new_cache(0);
  SequenceChunk chunk{&cache, prompt, false};
  Logits l = tiny().forward({&chunk, 1});
  for (;;) {
    const float* row = l.row(0);
    search.step({&row, 1});
    if (search.done()) break;
    chunk.tokens = {&search.running()[0].tokens.back(), 1};
    l = tiny().forward({&chunk, 1});
  }
  EXPECT_EQ(search.results().at(0).tokens, g.tokens);
}

// Log-probability of `continuation` after `prompt`, summed, by full passes.
double sequence_logprob(const std::vector<TokenId>& prompt, const std::vector<TokenId>& continuation) {
  std::vector<TokenId> all = prompt;
  all.insert(all.end(), continuation.begin(), continuation.end());
  KVCache cache = tiny().new_cache(0);
  SequenceChunk chunk{&cache, all, true, static_cast<int64_t>(prompt.size()) - 1};
  const Logits l = tiny().forward({&chunk, 1});
  double sum = 0;
  for (size_t i = 0; i < continuation.size(); ++i) {
    const float* row = l.row(static_cast<int64_t>(i));
    double mx = -1e30, z = 0;
    for (int64_t v = 0; v < l.vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int64_t v = 0; v < l.vocab; ++v) z += std::exp(row[v] - mx);
    sum += row[continuation[i]] - mx - std::log(z);
  }
  return sum;
}

// An exhaustive search over 50257^L continuations is out of reach, and
// searching only the best candidates would not be exhaustive. So the
// vocabulary is restricted: a logit bias of -inf on every token but 5 leaves
// exactly 5^L continuations, all of which are scored by full forward passes.
// Beam search still sees the model's true log-probabilities (the bias is
// applied after the log-softmax, as in Hugging Face), and with num_beams >=
// 5^(L-1) no prefix is ever dropped, so it must find the best one.
void expect_beam_equals_exhaustive(int length, int beams) {
  SCOPED_TRACE(fmt::format("length {}, {} beams", length, beams));
  const std::vector<TokenId> prompt = {5688, 318};
  const std::vector<TokenId> allowed = {17649, 257, 318, 5688, 1000};
  GenerateOptions o;
  o.num_beams = beams;
  o.max_new_tokens = length;
  o.stop_at_eos = false;
  for (TokenId t = 0; t < 50257; ++t)
    if (std::find(allowed.begin(), allowed.end(), t) == allowed.end())
      o.sampling.logit_bias[t] = -std::numeric_limits<float>::infinity();
  const auto r = generate(tiny(), prompt, o);

  std::vector<TokenId> best, cur(static_cast<size_t>(length));
  double best_lp = -1e30;
  const auto total = static_cast<int>(std::pow(allowed.size(), length));
  for (int code = 0; code < total; ++code) {
    for (int i = 0, c = code; i < length; ++i, c /= 5) cur[i] = allowed[c % 5];
    const double lp = sequence_logprob(prompt, cur);
    if (lp > best_lp) {
      best_lp = lp;
      best = cur;
    }
  }
  EXPECT_EQ(r.tokens, best);
  EXPECT_NEAR(r.choices[0].score, best_lp / length, 1e-4) << "score: sum of log-probs / length";
}

TEST(GenerateBeam, WideEnoughBeamEqualsExhaustiveSearchOverLength2) { expect_beam_equals_exhaustive(2, 5); }
TEST(GenerateBeam, WideEnoughBeamEqualsExhaustiveSearchOverLength3) { expect_beam_equals_exhaustive(3, 25); }

TEST(GenerateBeam, CliBeamsReturnRankedSequences) {
  const auto r = test::run_cli({"-q", "generate", "-p", "The meaning of life is", "-n", "8", "--beams", "4",
                                "--num-return-sequences", "3", "--json", "--early-stopping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["choices"].size(), 3u);
  EXPECT_GE(j["choices"][0]["score"].get<double>(), j["choices"][1]["score"].get<double>());
  EXPECT_GE(j["choices"][1]["score"].get<double>(), j["choices"][2]["score"].get<double>());
  EXPECT_EQ(j["tokens"], j["choices"][0]["tokens"]);
  const auto bad = test::run_cli({"-q", "generate", "-p", "x", "--beams", "2", "--early-stopping=sometimes"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("early-stopping"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace gptneo
