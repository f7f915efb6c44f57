// The evaluator against the plain scoring path: every log-likelihood equals
// score_tokens() over the harness's token sequence, LAMBADA accuracy equals a
// brute-force greedy loop, and batching / prefix sharing change nothing.
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "eval/pair_alignment.h"
#include "eval/stats.h"
#include "eval/text.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"
#include "gptneo/scoring.h"
#include "test_support.h"

namespace gptneo::eval {
namespace {

using Requests = std::vector<std::pair<std::string, std::string>>;

std::filesystem::path task_file(const char* name) { return test::data_dir() / "eval" / name; }

struct Loaded {
  std::unique_ptr<Model> model;
  Tokenizer tok;
};
Loaded& tiny() {
  static Loaded l{Model::load(test::neo_tiny_dir()), Tokenizer::load(test::tokenizer_dir())};
  return l;
}
Loaded& mini() {
  static Loaded l{Model::load(test::neo_trained_dir()), Tokenizer::load(test::neo_trained_dir())};
  return l;
}

// -log p(seq[t+1] | seq[..t]) for every t: score_tokens(), the `score` path.
// It runs every token of `seq`, so a sequence of max_length + 1 tokens (the
// harness's longest: the last token is a target, never an input) is scored
// by the same plain forward pass without its last token.
std::vector<double> next_token_nll(Model& model, std::span<const TokenId> seq) {
  if (static_cast<int64_t>(seq.size()) <= model.config().max_positions) return score_tokens(model, seq).nll;
  const auto inputs = seq.first(seq.size() - 1);
  KVCache cache = model.new_cache(static_cast<int64_t>(inputs.size()));
  const SequenceChunk chunk{&cache, inputs, true};
  const Logits logits = model.forward({&chunk, 1});
  std::vector<double> nll;
  for (int64_t t = 0; t < logits.rows; ++t)
    nll.push_back(token_nll({logits.row(t), static_cast<size_t>(logits.vocab)}, seq[static_cast<size_t>(t) + 1]));
  return nll;
}

// The harness's loglikelihood, written out directly: tokenize apart, keep the
// last max_length + 1 tokens, sum the continuation's log-probabilities from
// one unbatched pass.
double reference_loglikelihood(Loaded& m, const std::string& context, const std::string& continuation) {
  std::vector<TokenId> all = context.empty() ? std::vector<TokenId>{m.tok.eos_id()} : m.tok.encode(context);
  const std::vector<TokenId> cont = m.tok.encode(continuation);
  all.insert(all.end(), cont.begin(), cont.end());
  const auto keep = std::min<size_t>(all.size(), static_cast<size_t>(m.model->config().max_positions) + 1);
  const std::vector<TokenId> seq(all.end() - static_cast<std::ptrdiff_t>(keep), all.end());
  const std::vector<double> nll = next_token_nll(*m.model, seq);
  double ll = 0;
  for (size_t t = seq.size() - 1 - cont.size(); t < seq.size() - 1; ++t) ll -= nll[t];
  return ll;
}

void expect_close(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 2e-4 + 1e-6 * std::abs(want)) << what;
}

// Multiple-choice requests of both shapes, plus contexts longer than
// neo-tiny's 128 positions (cut from the left).
Requests choice_requests(int examples) {
  Requests out;
  for (const auto* file : {"choice-val.jsonl", "cloze-val.jsonl"}) {
    const Task t = load_task(TaskKind::MultipleChoice, task_file(file), examples);
    for (const auto& ex : t.choices)
      for (size_t c = 0; c < ex.contexts.size(); ++c) out.emplace_back(ex.contexts[c], ex.continuations[c]);
  }
  const Task docs = load_task(TaskKind::Perplexity, task_file("docs-val.jsonl"));
  int long_contexts = 0;
  for (const auto& d : docs.docs)
    if (d.text.size() > 1500 && long_contexts++ < 2) {
      out.emplace_back(d.text.substr(0, 1200), d.text.substr(1200, 40));
      out.emplace_back(d.text.substr(0, 1200), " and nothing else.");
    }
  out.emplace_back("", "An empty context is the end-of-text token.");
  return out;
}

TEST(EvalScoring, EveryLoglikelihoodMatchesTheScorePath) {
  Loaded& m = tiny();
  const Requests requests = choice_requests(4);
  Evaluator ev(*m.model, m.tok);
  const auto got = ev.loglikelihood(requests);
  ASSERT_EQ(got.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    expect_close(got[i].logprob, reference_loglikelihood(m, requests[i].first, requests[i].second),
                 "request " + std::to_string(i));
    double sum = 0;
    for (const double lp : got[i].token_logprobs) sum += lp;
    EXPECT_DOUBLE_EQ(got[i].logprob, sum);
  }
}

TEST(EvalScoring, BatchingAndPrefixSharingChangeNothing) {
  Loaded& m = tiny();
  const Requests requests = choice_requests(6);
  EvalOptions one;
  one.batch = 1;
  EvalOptions many;
  many.batch = 64;
  EvalOptions split;  // passes cut by the token budget instead
  split.max_tokens = 200;
  const auto a = Evaluator(*m.model, m.tok, one).loglikelihood(requests);
  const auto b = Evaluator(*m.model, m.tok, many).loglikelihood(requests);
  const auto c = Evaluator(*m.model, m.tok, split).loglikelihood(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_NEAR(a[i].logprob, b[i].logprob, 1e-4) << i;
    EXPECT_NEAR(a[i].logprob, c[i].logprob, 1e-4) << i;
    EXPECT_EQ(a[i].is_greedy, b[i].is_greedy) << i;
  }
  // Whole tasks: the same metrics at any batch size.
  const Task mc = load_task(TaskKind::MultipleChoice, task_file("choice-val.jsonl"), 10);
  const TaskResult r1 = Evaluator(*m.model, m.tok, one).run(mc);
  const TaskResult r2 = Evaluator(*m.model, m.tok, many).run(mc);
  ASSERT_EQ(r1.metrics.size(), 3u);  // acc, acc_norm, acc_bytes
  for (size_t k = 0; k < r1.metrics.size(); ++k) EXPECT_EQ(r1.metrics[k].value, r2.metrics[k].value);
  // Sharing the context runs fewer tokens than one pass per choice would.
  int64_t unshared = 0;
  for (const auto& ex : mc.choices)
    for (size_t c = 0; c < ex.contexts.size(); ++c)
      unshared += static_cast<int64_t>(m.tok.encode(ex.contexts[c]).size() + m.tok.encode(ex.continuations[c]).size()) - 1;
  EXPECT_LT(r2.tokens, unshared * 2 / 3);
}

TEST(EvalScoring, MultipleChoiceMetricsFollowTheLoglikelihoods) {
  Loaded& m = tiny();
  const Task mc = load_task(TaskKind::MultipleChoice, task_file("choice-val.jsonl"), 12);
  Evaluator ev(*m.model, m.tok);
  const TaskResult r = ev.run(mc);
  std::vector<double> acc, acc_norm, acc_bytes;
  for (const auto& ex : mc.choices) {
    Requests reqs;
    for (size_t c = 0; c < ex.contexts.size(); ++c) reqs.emplace_back(ex.contexts[c], ex.continuations[c]);
    const auto lls = ev.loglikelihood(reqs);
    size_t best = 0, best_norm = 0, best_bytes = 0;
    for (size_t c = 1; c < lls.size(); ++c) {
      if (lls[c].logprob > lls[best].logprob) best = c;
      if (lls[c].logprob / ex.lengths[c] > lls[best_norm].logprob / ex.lengths[best_norm]) best_norm = c;
      const double bytes = double(ex.continuations[c].size() - 1), best_bytes_len = double(ex.continuations[best_bytes].size() - 1);
      if (lls[c].logprob / bytes > lls[best_bytes].logprob / best_bytes_len) best_bytes = c;
    }
    acc.push_back(best == static_cast<size_t>(ex.gold));
    acc_norm.push_back(best_norm == static_cast<size_t>(ex.gold));
    acc_bytes.push_back(best_bytes == static_cast<size_t>(ex.gold));
  }
  EXPECT_EQ(r.n, 12);
  EXPECT_DOUBLE_EQ(r.metric("acc")->value, mean(acc));
  EXPECT_DOUBLE_EQ(*r.metric("acc")->stderr_value, mean_stderr(acc));
  EXPECT_DOUBLE_EQ(r.metric("acc_norm")->value, mean(acc_norm));
  EXPECT_DOUBLE_EQ(r.metric("acc_bytes")->value, mean(acc_bytes));  // continuation minus its " " delimiter
  // Winogrande's shape reports acc only (the harness's winogrande task).
  const TaskResult w = ev.run(load_task(TaskKind::MultipleChoice, task_file("cloze-val.jsonl"), 4));
  EXPECT_NE(w.metric("acc"), nullptr);
  EXPECT_EQ(w.metric("acc_norm"), nullptr);
  EXPECT_EQ(w.metric("acc_bytes"), nullptr);
}

TEST(EvalScoring, RollingLoglikelihoodCoversLongDocuments) {
  Loaded& m = tiny();  // 128 positions: every document spans several windows
  // The first 1600 characters (to a space) of two long documents: about
  // 400 tokens, 4 windows each.
  Task docs = load_task(TaskKind::Perplexity, task_file("docs-val.jsonl"));
  std::erase_if(docs.docs, [](const PerplexityDoc& d) { return d.text.size() < 2000; });
  docs.docs.resize(2);
  for (auto& d : docs.docs) {
    d.text.resize(d.text.rfind(' ', 1600));
    d.words = python_word_count(d.text);
    d.bytes = static_cast<int64_t>(d.text.size());
  }
  Evaluator ev(*m.model, m.tok);
  double total = 0, words = 0, bytes = 0;
  for (const auto& d : docs.docs) {
    // The windows written out: the first predicts up to 128 tokens after
    // end-of-text; each next one predicts up to 128 more from the 128 before.
    const std::vector<TokenId> ids = m.tok.encode(d.text);
    ASSERT_GT(ids.size(), 3 * 128u);
    double want = 0;
    for (size_t end = 0; end < ids.size();) {
      const size_t next = std::min(end + 128, ids.size());
      std::vector<TokenId> seq;
      if (end == 0) seq.push_back(m.tok.eos_id());
      const size_t from = end == 0 ? 0 : next - 129;
      seq.insert(seq.end(), ids.begin() + static_cast<std::ptrdiff_t>(from), ids.begin() + static_cast<std::ptrdiff_t>(next));
      const std::vector<double> nll = next_token_nll(*m.model, seq);
      for (size_t t = nll.size() - (next - end); t < nll.size(); ++t) want -= nll[t];
      end = next;
    }
    const double got = ev.loglikelihood_rolling(d.text);
    expect_close(got, want, "document");
    total += got, words += double(d.words), bytes += double(d.bytes);
  }
  const TaskResult r = ev.run(docs);
  EXPECT_NEAR(r.metric("word_perplexity")->value, std::exp(-total / words), 1e-6 * std::exp(-total / words));
  EXPECT_NEAR(r.metric("bits_per_byte")->value, -total / bytes / std::log(2.0), 1e-6);
  EXPECT_NEAR(r.metric("byte_perplexity")->value, std::exp(-total / bytes), 1e-6);
  EXPECT_FALSE(r.metric("word_perplexity")->stderr_value.has_value());  // the harness reports N/A
}

TEST(EvalScoring, LambadaAccuracyEqualsABruteForceGreedyLoop) {
  Loaded& m = mini();
  // 20 passages of which the model completes several (5, by this test's own
  // count), so that both outcomes are compared.
  Task task = load_task(TaskKind::Lambada, task_file("lambada-val.jsonl"));
  task.texts = std::vector<std::string>(task.texts.begin() + 60, task.texts.begin() + 80);
  std::vector<double> greedy, lls;
  Requests requests;
  for (const std::string& text : task.texts) {
    const size_t space = text.rfind(' ');
    const std::string context = text.substr(0, space), target = " " + text.substr(space + 1);
    const std::vector<TokenId> ctx = m.tok.encode(context), want = m.tok.encode(target);
    // Greedy decoding from scratch, one full forward pass per token, which
    // also gives each target token's log-probability.
    bool match = true;
    double ll = 0;
    std::vector<TokenId> seq = ctx;
    for (const TokenId target_token : want) {
      KVCache cache = m.model->new_cache(static_cast<int64_t>(seq.size()));
      const SequenceChunk chunk{&cache, seq};
      const Logits logits = m.model->forward({&chunk, 1});
      const float* row = logits.row(0);
      const auto best = static_cast<TokenId>(std::max_element(row, row + logits.vocab) - row);
      match = match && best == target_token;
      ll -= token_nll({row, static_cast<size_t>(logits.vocab)}, target_token);
      seq.push_back(target_token);
    }
    greedy.push_back(match ? 1.0 : 0.0);
    lls.push_back(ll);
    requests.emplace_back(context, target);
  }
  // Each example's log-likelihood and greedy flag, then the task's metrics.
  const auto got = Evaluator(*m.model, m.tok).loglikelihood(requests);
  for (size_t i = 0; i < got.size(); ++i) {
    expect_close(got[i].logprob, lls[i], "example " + std::to_string(i));
    EXPECT_EQ(got[i].is_greedy, greedy[i] == 1.0) << i;
  }
  EvalOptions options;
  options.bootstrap_iters = 1000;
  const TaskResult r = Evaluator(*m.model, m.tok, options).run(task);
  EXPECT_GT(mean(greedy), 0.0);  // the trained model gets some right: the comparison means something
  EXPECT_LT(mean(greedy), 1.0);
  EXPECT_DOUBLE_EQ(r.metric("acc")->value, mean(greedy));
  EXPECT_DOUBLE_EQ(*r.metric("acc")->stderr_value, mean_stderr(greedy));
  EXPECT_NEAR(r.metric("perplexity")->value, perplexity(lls), 1e-5 * perplexity(lls));
  ASSERT_TRUE(r.metric("perplexity")->stderr_value.has_value());
  EXPECT_NEAR(*r.metric("perplexity")->stderr_value, bootstrap_perplexity_stderr(lls, 1000),
              1e-4 * *r.metric("perplexity")->stderr_value);
}

TEST(EvalScoring, PairsCompareTheSharedTokens) {
  Loaded& m = mini();
  const Task task = load_task(TaskKind::Pairs, test::source_dir() / "data" / "bias-probe" / "bias-probe.jsonl");
  Task few = task;
  few.pairs.clear();
  for (size_t i = 0; i < task.pairs.size(); i += 15) few.pairs.push_back(task.pairs[i]);  // 2 per category
  Evaluator ev(*m.model, m.tok);
  const TaskResult r = ev.run(few);
  ASSERT_EQ(r.categories.size(), 5u);
  EXPECT_EQ(r.categories[0].category, "age");  // sorted by name
  double shared = 0, full = 0, diff = 0;
  for (const auto& p : few.pairs) {
    const auto lls = ev.loglikelihood(Requests{{"", p.more}, {"", p.less}});
    expect_close(lls[0].logprob, reference_loglikelihood(m, "", p.more), "more");
    const auto [in_more, in_less] = shared_tokens(m.tok.encode(p.more), m.tok.encode(p.less));
    double s_more = 0, s_less = 0;
    for (size_t t = 0; t < in_more.size(); ++t) s_more += in_more[t] ? lls[0].token_logprobs[t] : 0;
    for (size_t t = 0; t < in_less.size(); ++t) s_less += in_less[t] ? lls[1].token_logprobs[t] : 0;
    shared += s_more > s_less, full += lls[0].logprob > lls[1].logprob;
    diff += std::abs(lls[0].logprob - lls[1].logprob);
  }
  const double n = double(few.pairs.size());
  EXPECT_DOUBLE_EQ(r.metric("pct_stereotype")->value, shared / n);
  EXPECT_DOUBLE_EQ(r.metric("pct_stereotype_full")->value, full / n);
  // Batches of other sizes round float32 sums differently: ~1e-6 here.
  EXPECT_NEAR(r.metric("likelihood_difference")->value, diff / n, 1e-4);
}

TEST(EvalScoring, SharedTokensOfAMinimalPair) {
  // "Women are bad" vs "Men are bad": all but the first token are shared.
  const auto [a, b] = shared_tokens(std::vector<TokenId>{1, 2, 3, 4}, std::vector<TokenId>{9, 2, 3, 4});
  EXPECT_EQ(a, (std::vector<bool>{false, true, true, true}));
  EXPECT_EQ(b, (std::vector<bool>{false, true, true, true}));
  // A two-token group word against a one-token one, in the middle.
  const auto [c, d] = shared_tokens(std::vector<TokenId>{5, 7, 8, 6}, std::vector<TokenId>{5, 9, 6});
  EXPECT_EQ(c, (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(d, (std::vector<bool>{true, false, true}));
}

TEST(EvalScoring, PairEncodings) {
  Loaded& m = tiny();
  EvalOptions joint;
  joint.pair_encoding = PairEncoding::Joint;
  Evaluator sep(*m.model, m.tok), jnt(*m.model, m.tok, joint);
  // Separate: the context's trailing space stays a token of its own.
  const auto [c1, k1] = sep.encode_pair("Answer: ", "yes");
  EXPECT_EQ(c1, m.tok.encode("Answer: "));
  EXPECT_EQ(k1, m.tok.encode("yes"));
  // Joint (harness 0.4): the space moves to the continuation, " yes" is one token.
  const auto [c2, k2] = jnt.encode_pair("Answer: ", "yes");
  EXPECT_EQ(c2, m.tok.encode("Answer:"));
  EXPECT_EQ(k2, m.tok.encode(" yes"));
  // Both agree on the usual shape, and an empty context is end-of-text.
  EXPECT_EQ(sep.encode_pair("The cat", " sat"), jnt.encode_pair("The cat", " sat"));
  EXPECT_EQ(sep.encode_pair("", "Hi").first, std::vector<TokenId>{m.tok.eos_id()});
}

TEST(EvalScoring, ContinuationLongerThanTheModelIsAnError) {
  Loaded& m = tiny();
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += " word";
  Evaluator ev(*m.model, m.tok);
  EXPECT_THROW(ev.loglikelihood(Requests{{"ctx", long_text}}), Error);
}

}  // namespace
}  // namespace gptneo::eval
