// Sampling options: each one's meaning on hand-made logits (exactly which
// logits change and how), and on the bundled model (temperature 0 and top-k 1
// equal greedy, seeds reproduce, n > 1, logprobs, truncation).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "runtime/logits_processors.h"
#include "test_support.h"

namespace gptneo {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Model& mini() {
  static std::unique_ptr<Model> m = Model::load(test::neo_trained_dir());
  return *m;
}
const Tokenizer& tok() {
  static Tokenizer t = Tokenizer::load(test::neo_trained_dir());
  return t;
}

DecodeContext toy_context(int64_t vocab, TokenId eos = -1) { return DecodeContext{nullptr, eos, vocab, 0}; }

std::vector<float> processed(const GenerateOptions& o, std::span<const TokenId> prompt,
                             std::span<const TokenId> generated, std::vector<float> logits, TokenId eos = -1) {
  LogitsProcessor p(o, toy_context(static_cast<int64_t>(logits.size()), eos), prompt);
  for (TokenId t : generated) p.push(t);
  p.apply(logits);
  return logits;
}

GenerateOptions greedy_options(int64_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.greedy = true;
  o.stop_at_eos = false;
  return o;
}

std::vector<TokenId> prompt_of(const std::string& text) { return tok().encode(text); }

// ---- processors on hand-made logits ------------------------------------------------

TEST(GenerateSampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens) {
  GenerateOptions o;
  o.sampling.repetition_penalty = 2.0f;
  const std::vector<TokenId> prompt = {1, 2, 2};
  const std::vector<TokenId> gen = {4};
  const auto out = processed(o, prompt, gen, {1.0f, 4.0f, -3.0f, 5.0f, 6.0f, -1.0f});
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f, -6.0f, 5.0f, 3.0f, -1.0f}));
}

TEST(GenerateSampling, PresenceAndFrequencyPenaltiesCountOnlyGeneratedTokens) {
  GenerateOptions o;
  o.sampling.presence_penalty = 0.5f;
  o.sampling.frequency_penalty = 0.25f;
  const std::vector<TokenId> prompt = {1, 1};
  const std::vector<TokenId> gen = {3, 3, 2};
  const auto out = processed(o, prompt, gen, {0, 0, 0, 0, 0});
  // token 3 twice: 2*0.25 + 0.5; token 2 once: 0.25 + 0.5; prompt token 1 untouched.
  EXPECT_EQ(out, (std::vector<float>{0, 0, -0.75f, -1.0f, 0}));
}

TEST(GenerateSampling, LogitBiasAddsAndMinusInfinityBans) {
  GenerateOptions o;
  o.sampling.logit_bias = {{0, 1.5f}, {2, -kInf}};
  const auto out = processed(o, {}, {}, {1, 1, 1, 1});
  EXPECT_EQ(out[0], 2.5f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], -kInf);
}

TEST(GenerateSampling, NoRepeatNgramBansTokensThatCompleteASeenNgram) {
  GenerateOptions o;
  o.sampling.no_repeat_ngram_size = 3;
  // History 5 6 7 5 6: the 3-grams (5,6,7), (6,7,5), (7,5,6); the last two
  // tokens (5,6) were followed by 7, so 7 is banned and nothing else.
  const std::vector<TokenId> prompt = {5, 6, 7};
  const std::vector<TokenId> gen = {5, 6};
  std::vector<float> in(9, 0.0f);
  const auto out = processed(o, prompt, gen, in);
  for (int t = 0; t < 9; ++t) EXPECT_EQ(out[t], t == 7 ? -kInf : 0.0f) << t;
}

TEST(GenerateSampling, MinNewTokensBansEosUntilReached) {
  GenerateOptions o;
  o.min_new_tokens = 2;
  const std::vector<TokenId> gen1 = {1};
  EXPECT_EQ(processed(o, {}, gen1, {0, 0, 0}, 2)[2], -kInf);
  const std::vector<TokenId> gen2 = {1, 1};
  EXPECT_EQ(processed(o, {}, gen2, {0, 0, 0}, 2)[2], 0.0f);
}

// ---- warpers -------------------------------------------------------------------------

std::map<TokenId, double> as_map(const Distribution& d) {
  std::map<TokenId, double> m;
  for (size_t i = 0; i < d.ids.size(); ++i) m[d.ids[i]] = d.probs[i];
  return m;
}

std::vector<float> logs(std::vector<double> p) {
  std::vector<float> l;
  for (double v : p) l.push_back(static_cast<float>(std::log(v)));
  return l;
}

TEST(GenerateSampling, TopKKeepsTheKBestAndTies) {
  SamplingOptions s;
  s.top_k = 2;
  std::vector<float> l = {1, 3, 2, 3, 0};
  EXPECT_EQ(as_map(sampling_distribution(l, s)).size(), 2u);  // 1 and 3
  l = {1, 3, 2, 2, 0};  // the second best is a tie: both kept, as Hugging Face does
  EXPECT_EQ(as_map(sampling_distribution(l, s)).size(), 3u);
  s.top_k = 3;
  l = {2, 3, 1, 2, 2, 0};  // 3, then three tied at 2
  EXPECT_EQ(as_map(sampling_distribution(l, s)).size(), 4u);
}

TEST(GenerateSampling, TopPKeepsTheSmallestSetReachingP) {
  SamplingOptions s;
  s.top_p = 0.7f;
  auto l = logs({0.5, 0.25, 0.15, 0.1});
  const auto m = as_map(sampling_distribution(l, s));
  ASSERT_EQ(m.size(), 2u);  // 0.5 < 0.7 <= 0.75
  EXPECT_NEAR(m.at(0), 0.5 / 0.75, 1e-6);
  s.top_p = 0.8f;
  l = logs({0.5, 0.25, 0.15, 0.1});
  EXPECT_EQ(as_map(sampling_distribution(l, s)).size(), 3u);  // 0.75 < 0.8 <= 0.9
}

TEST(GenerateSampling, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplingOptions s;
  s.min_p = 0.3f;
  auto l = logs({0.5, 0.2, 0.16, 0.14});
  const auto m = as_map(sampling_distribution(l, s));
  EXPECT_EQ(m.size(), 3u);  // 0.14 < 0.3 * 0.5
  EXPECT_FALSE(m.contains(3));
}

TEST(GenerateSampling, TypicalPKeepsTokensClosestToTheEntropy) {
  SamplingOptions s;
  s.typical_p = 0.45f;
  // Entropy of (0.4, 0.3, 0.2, 0.1) is 1.2799; surprisals 0.916, 1.204,
  // 1.609, 2.303: by distance from it the order is token 1 (0.076), 2
  // (0.330), 0 (0.364), 3; cumulative mass 0.3, 0.5, ...: one entry below
  // 0.45, so the first two of that order are kept (Hugging Face's rule).
  auto l = logs({0.4, 0.3, 0.2, 0.1});
  const auto m = as_map(sampling_distribution(l, s));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(m.contains(1));
  EXPECT_TRUE(m.contains(2));
}

TEST(GenerateSampling, TemperatureSharpensBeforeTheFilters) {
  SamplingOptions s;
  s.temperature = 0.5f;
  auto l = logs({0.6, 0.4});
  const auto m = as_map(sampling_distribution(l, s));
  EXPECT_NEAR(m.at(0), 0.36 / 0.52, 1e-6);
}

TEST(GenerateSampling, EverythingBannedIsAClearError) {
  SamplingOptions s;
  std::vector<float> l = {-kInf, -kInf};
  EXPECT_THROW(sampling_distribution(l, s), Error);
  EXPECT_THROW(greedy_distribution(l), Error);
}

// ---- banned words ----------------------------------------------------------------------

TEST(GenerateSampling, BannedWordBlocksEveryTokenizationAtAWordStart) {
  const TokenId hel = tok().token_id("Ġhel").value();
  const TokenId lo = tok().token_id("lo").value();
  const TokenId hello_sp = tok().token_id("Ġhello").value();
  const TokenId hello = tok().token_id("hello").value();
  GenerateOptions o;
  o.sampling.banned_words = {"hello"};
  const DecodeContext ctx{&tok(), 50256, 50257, 1024};
  const std::vector<TokenId> say = prompt_of("Say");
  LogitsProcessor p(o, ctx, say);
  std::vector<float> s(50257, 0.0f);
  p.apply(s);
  EXPECT_EQ(s[hello_sp], -kInf) << "\" hello\" starts a word";
  EXPECT_EQ(s[hello], 0.0f) << "\"Sayhello\": inside a word, allowed";
  EXPECT_EQ(s[lo], 0.0f);
  p.push(hel);  // "Say hel": now "lo" would complete the word
  std::fill(s.begin(), s.end(), 0.0f);
  p.apply(s);
  EXPECT_EQ(s[lo], -kInf);
  const TokenId los = tok().token_id("los").value();
  EXPECT_EQ(s[los], -kInf) << "\"hellos\" begins with the banned word";
  EXPECT_EQ(s[tok().token_id("p").value()], 0.0f);
}

TEST(GenerateSampling, BannedWordsNeverAppearInSampledText) {
  GenerateOptions o;
  o.max_new_tokens = 80;
  o.seed = 7;
  o.stop_at_eos = false;
  o.sampling.temperature = 0.7f;
  o.sampling.banned_words = {"the", "The"};
  const auto r = generate(mini(), &tok(), prompt_of("Once upon a time"), o);
  const std::string& text = r.choices[0].text;
  EXPECT_FALSE(std::regex_search(text, std::regex("(^|[^A-Za-z0-9])[Tt]he"))) << text;
  // Without the ban the model says "the" all the time.
  o.sampling.banned_words.clear();
  const auto free = generate(mini(), &tok(), prompt_of("Once upon a time"), o);
  EXPECT_TRUE(std::regex_search(free.choices[0].text, std::regex("(^|[^A-Za-z0-9])[Tt]he")));
}

// ---- on the model ------------------------------------------------------------------------

TEST(GenerateSampling, TemperatureZeroAndTopK1EqualGreedy) {
  const auto prompt = prompt_of("The meaning of life is");
  const auto greedy = generate(mini(), prompt, greedy_options(30)).tokens;
  GenerateOptions o = greedy_options(30);
  o.sampling.greedy = false;
  o.sampling.temperature = 0.0f;
  o.seed = 1;
  EXPECT_EQ(generate(mini(), prompt, o).tokens, greedy);
  o.sampling.temperature = 1e-4f;  // → 0: all mass on the argmax
  EXPECT_EQ(generate(mini(), prompt, o).tokens, greedy);
  o.sampling.temperature = 1.5f;
  o.sampling.top_k = 1;
  EXPECT_EQ(generate(mini(), prompt, o).tokens, greedy);
}

TEST(GenerateSampling, MinusInfBiasBansTheGreedyToken) {
  const auto prompt = prompt_of("Once upon a time");
  const TokenId first = generate(mini(), prompt, greedy_options(1)).tokens.at(0);
  GenerateOptions o = greedy_options(20);
  o.sampling.logit_bias[first] = -kInf;
  const auto r = generate(mini(), prompt, o);
  EXPECT_NE(r.tokens[0], first);
  EXPECT_EQ(std::count(r.tokens.begin(), r.tokens.end(), first), 0);
  o.sampling.greedy = false;
  o.sampling.temperature = 1.5f;
  o.sampling.top_p = 1.0f;
  o.seed = 3;
  const auto s = generate(mini(), prompt, o);
  EXPECT_EQ(std::count(s.tokens.begin(), s.tokens.end(), first), 0);
}

TEST(GenerateSampling, SeedReproducesAndNoSeedReportsTheOneDrawn) {
  GenerateOptions o;
  o.max_new_tokens = 25;
  o.sampling.temperature = 1.0f;
  o.stop_at_eos = false;
  o.seed = 42;
  const auto prompt = prompt_of("In the beginning");
  const auto a = generate(mini(), prompt, o), b = generate(mini(), prompt, o);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.seed, 42u);
  o.seed = 43;
  EXPECT_NE(generate(mini(), prompt, o).tokens, a.tokens);
  o.seed.reset();
  const auto c = generate(mini(), prompt, o);
  o.seed = c.seed;
  EXPECT_EQ(generate(mini(), prompt, o).tokens, c.tokens);
}

TEST(GenerateSampling, SeveralSequencesShareThePromptAndTheFirstMatchesASingleRun) {
  GenerateOptions o;
  o.max_new_tokens = 15;
  o.stop_at_eos = false;
  o.seed = 9;
  const auto prompt = prompt_of("The computer");
  const auto single = generate(mini(), prompt, o);
  o.num_return_sequences = 3;
  const auto many = generate(mini(), prompt, o);
  ASSERT_EQ(many.choices.size(), 3u);
  EXPECT_EQ(many.choices[0].tokens, single.tokens);
  EXPECT_NE(many.choices[1].tokens, many.choices[0].tokens);
  EXPECT_NE(many.choices[2].tokens, many.choices[1].tokens);
  EXPECT_EQ(many.generated_tokens, 45);
  // The other sequences are those of the derived seeds.
  o.num_return_sequences = 1;
  o.seed = choice_seed(9, 2);
  EXPECT_EQ(generate(mini(), prompt, o).tokens, many.choices[2].tokens);
}

TEST(GenerateSampling, LogprobsAreTheModelsLogSoftmax) {
  GenerateOptions o = greedy_options(3);
  o.top_logprobs = 3;
  const auto prompt = prompt_of("Once upon a time");
  const auto r = generate(mini(), prompt, o);
  ASSERT_EQ(r.choices[0].logprobs.size(), 3u);
  // Recompute the first step by hand.
  KVCache cache = mini().new_cache(0);
  SequenceChunk chunk{&cache, prompt, false};
  const Logits l = mini().forward({&chunk, 1});
  const std::vector<double> lsm = log_softmax({l.row(0), static_cast<size_t>(l.vocab)});
  const TokenLogprob& t = r.choices[0].logprobs[0];
  EXPECT_EQ(t.token, r.tokens[0]);
  EXPECT_NEAR(t.logprob, lsm[t.token], 1e-5);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].first, t.token) << "greedy: the chosen token is the most likely";
  EXPECT_GE(t.top[0].second, t.top[1].second);
  EXPECT_GE(t.top[1].second, t.top[2].second);
}

TEST(GenerateSampling, MinNewTokensAndIgnoreEosOnTheModel) {
  GenerateOptions o = greedy_options(10);
  o.stop_at_eos = true;
  o.sampling.logit_bias[50256] = 100.0f;  // the model would end at once
  const auto prompt = prompt_of("Hello");
  auto r = generate(mini(), prompt, o);
  EXPECT_EQ(r.tokens.size(), 1u);
  EXPECT_EQ(r.finish_reason, FinishReason::Eos);
  o.min_new_tokens = 4;
  r = generate(mini(), prompt, o);
  EXPECT_EQ(r.tokens.size(), 5u);
  EXPECT_EQ(r.tokens.back(), 50256);
  o.stop_at_eos = false;
  r = generate(mini(), prompt, o);
  EXPECT_EQ(r.tokens.size(), 10u);
  EXPECT_EQ(r.finish_reason, FinishReason::Length);
}

TEST(GenerateSampling, LongPromptIsAnErrorOrKeepsItsEnd) {
  std::vector<TokenId> prompt(200, 262);
  prompt.back() = 640;
  Model& model = mini();
  GenerateOptions o = greedy_options(5);
  const int64_t ctx = model.config().max_positions;
  std::vector<TokenId> longer(static_cast<size_t>(ctx) + 10, 262);
  EXPECT_THROW(generate(model, longer, o), Error);
  o.truncation = Truncation::Left;
  const auto r = generate(model, longer, o);
  EXPECT_EQ(r.prompt_tokens, ctx - 5);
  EXPECT_EQ(r.truncated_prompt_tokens, 15);
  EXPECT_EQ(r.tokens.size(), 5u);
  const auto kept = fit_prompt(prompt, o, 100);
  EXPECT_EQ(kept.size(), 95u);
  EXPECT_EQ(kept.back(), 640);
}

TEST(GenerateSampling, InvalidOptionsAreClearErrors) {
  GenerateOptions o;
  o.sampling.top_p = 0.0f;
  try {
    o.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
  o = GenerateOptions();
  o.sampling.logit_bias[60000] = 1.0f;
  EXPECT_THROW(generate(mini(), prompt_of("x"), o), Error);
  o = GenerateOptions();
  o.num_beams = 2;
  o.num_return_sequences = 3;
  EXPECT_THROW(o.validate(), Error);
}

}  // namespace
}  // namespace gptneo
