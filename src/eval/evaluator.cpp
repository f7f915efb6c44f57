// The task kinds: turning examples into scoring requests the way the
// harness does, and the results into its metrics.
#include <chrono>
#include <cmath>
#include <map>
#include <numbers>

#include <fmt/format.h>

#include "eval/batch_scorer.h"
#include "eval/pair_alignment.h"
#include "eval/requests.h"
#include "eval/stats.h"
#include "eval/text.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"

namespace gptneo::eval {

namespace {

using Clock = std::chrono::steady_clock;

Metric mean_metric(std::string name, const std::vector<double>& xs) {
  return {std::move(name), mean(xs), mean_stderr(xs)};
}

// np.argmax: the first index of the largest value.
size_t argmax(const std::vector<double>& xs) {
  size_t best = 0;
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i] > xs[best]) best = i;
  return best;
}

// Scores groups of requests, reporting progress in examples: `example_of[g]`
// is the example group g belongs to (groups of one example are adjacent).
std::vector<std::vector<ScoreResult>> score_with_progress(BatchScorer& scorer, const std::vector<RequestGroup>& groups,
                                                          const std::vector<int64_t>& example_of, int64_t examples,
                                                          const EvalOptions& options) {
  return scorer.score(groups, [&](int64_t groups_done) {
    if (!options.progress || groups_done == 0) return;
    const auto last = static_cast<size_t>(groups_done - 1);
    const bool complete = groups_done == static_cast<int64_t>(groups.size()) || example_of[last + 1] != example_of[last];
    options.progress(example_of[last] + (complete ? 1 : 0), examples);
  });
}

BatchLimits limits_of(const EvalOptions& o) { return {o.batch, o.max_tokens, o.cache_bytes}; }

}  // namespace

const Metric* TaskResult::metric(std::string_view name) const {
  for (const auto& m : metrics)
    if (m.name == name) return &m;
  return nullptr;
}

Evaluator::Evaluator(Model& model, const Tokenizer& tokenizer, EvalOptions options)
    : model_(model), tok_(tokenizer), options_(std::move(options)) {
  if (options_.batch < 1) throw Error("--batch must be at least 1");
  if (options_.bootstrap_iters < 0) throw Error("--bootstrap-iters must not be negative");
}

int64_t Evaluator::max_length() const { return model_.config().max_positions; }

std::pair<std::vector<TokenId>, std::vector<TokenId>> Evaluator::encode_pair(std::string_view context,
                                                                             std::string_view continuation) const {
  // An empty context is the end-of-text token, in every harness version.
  if (context.empty()) return {{tok_.eos_id()}, tok_.encode(continuation)};
  if (options_.pair_encoding == PairEncoding::Separate) return {tok_.encode(context), tok_.encode(continuation)};
  const std::string_view trimmed = python_rstrip(context);
  const std::string moved = std::string(context.substr(trimmed.size())) + std::string(continuation);
  std::vector<TokenId> whole = tok_.encode(std::string(trimmed) + moved);
  std::vector<TokenId> ctx = tok_.encode(trimmed);
  const size_t split = std::min(ctx.size(), whole.size());
  return {std::move(ctx), std::vector<TokenId>(whole.begin() + static_cast<std::ptrdiff_t>(split), whole.end())};
}

std::vector<Loglikelihood> Evaluator::loglikelihood(std::span<const std::pair<std::string, std::string>> requests) {
  // Consecutive requests with the same context form one group (they share it).
  std::vector<RequestGroup> groups;
  std::vector<int64_t> example_of;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto [ctx, cont] = encode_pair(requests[i].first, requests[i].second);
    if (i == 0 || requests[i].first != requests[i - 1].first) groups.emplace_back();
    groups.back().push_back(make_request(ctx, cont, max_length()));
    example_of.push_back(static_cast<int64_t>(i));
  }
  BatchScorer scorer(model_, limits_of(options_));
  const auto scored = scorer.score(groups);
  std::vector<Loglikelihood> out;
  for (const auto& g : scored)
    for (const auto& r : g) out.push_back({r.logprob, r.greedy, r.token_logprobs});
  return out;
}

double Evaluator::loglikelihood_rolling(std::string_view text) {
  const std::vector<TokenId> tokens = tok_.encode(text);
  std::vector<RequestGroup> groups;
  for (auto& w : rolling_windows(tokens, tok_.eos_id(), max_length())) groups.push_back({std::move(w)});
  BatchScorer scorer(model_, limits_of(options_));
  double total = 0;
  for (const auto& g : scorer.score(groups)) total += g[0].logprob;
  return total;
}

namespace {

// Each kind in one function: requests from examples, metrics from scores.
class TaskRunner {
 public:
  TaskRunner(Evaluator& ev, Model& model, const Tokenizer& tok, const EvalOptions& options)
      : ev_(ev), tok_(tok), options_(options), scorer_(model, limits_of(options)) {}

  void run(const Task& task, TaskResult& result) {
    switch (task.kind) {
      case TaskKind::Perplexity: perplexity(task, result); break;
      case TaskKind::Lambada: lambada(task, result); break;
      case TaskKind::MultipleChoice: multiple_choice(task, result); break;
      case TaskKind::Pairs: pairs(task, result); break;
    }
    result.tokens = scorer_.tokens_run();
  }

 private:
  // Adds one example's requests as one group.
  void add_group(RequestGroup group, int64_t example) {
    groups_.push_back(std::move(group));
    example_of_.push_back(example);
  }
  std::vector<std::vector<ScoreResult>> score(int64_t examples) {
    return score_with_progress(scorer_, groups_, example_of_, examples, options_);
  }
  ScoreRequest request(std::string_view context, std::string_view continuation) {
    const auto [ctx, cont] = ev_.encode_pair(context, continuation);
    return make_request(ctx, cont, ev_.max_length());
  }

  // loglikelihood_rolling over each document; the word and byte metrics
  // divide the summed log-likelihood by the documents' word and byte counts
  // (the harness's weighted_perplexity and bits_per_byte).
  void perplexity(const Task& task, TaskResult& result) {
    int64_t tokens = 0;
    for (size_t d = 0; d < task.docs.size(); ++d) {
      const std::vector<TokenId> ids = tok_.encode(task.docs[d].text);
      tokens += static_cast<int64_t>(ids.size());
      // Each window is its own group: windows share no prefix.
      for (auto& w : rolling_windows(ids, tok_.eos_id(), ev_.max_length())) add_group({std::move(w)}, int64_t(d));
    }
    const auto scored = score(task.size());
    double ll = 0, words = 0, bytes = 0;
    for (const auto& g : scored) ll += g[0].logprob;
    for (const auto& d : task.docs) words += double(d.words), bytes += double(d.bytes);
    if (bytes == 0) throw Error(fmt::format("task {}: the documents are empty", task.name));
    result.metrics = {
        {"word_perplexity", std::exp(-ll / words), std::nullopt},
        {"byte_perplexity", std::exp(-ll / bytes), std::nullopt},
        {"bits_per_byte", -ll / bytes / std::numbers::ln2, std::nullopt},
        {"token_perplexity", tokens > 0 ? std::exp(-ll / double(tokens)) : 1.0, std::nullopt},
    };
  }

  // lambada_openai: the context is the text up to its last space, the
  // target the space and the last word.
  void lambada(const Task& task, TaskResult& result) {
    for (size_t i = 0; i < task.texts.size(); ++i) {
      const std::string& text = task.texts[i];
      const size_t space = text.rfind(' ');
      const std::string_view context = space == std::string::npos ? std::string_view() : std::string_view(text).substr(0, space);
      const std::string target = " " + (space == std::string::npos ? text : text.substr(space + 1));
      add_group({request(context, target)}, int64_t(i));
    }
    const auto scored = score(task.size());
    std::vector<double> lls, acc;
    for (const auto& g : scored) lls.push_back(g[0].logprob), acc.push_back(g[0].greedy ? 1.0 : 0.0);
    std::optional<double> ppl_stderr;
    if (options_.bootstrap_iters > 0 && lls.size() > 1)
      ppl_stderr = bootstrap_perplexity_stderr(lls, options_.bootstrap_iters);
    result.metrics = {{"perplexity", eval::perplexity(lls), ppl_stderr}, mean_metric("acc", acc)};
  }

  void multiple_choice(const Task& task, TaskResult& result) {
    for (size_t i = 0; i < task.choices.size(); ++i) {
      const ChoiceExample& ex = task.choices[i];
      RequestGroup g;
      for (size_t c = 0; c < ex.contexts.size(); ++c) g.push_back(request(ex.contexts[c], ex.continuations[c]));
      add_group(std::move(g), int64_t(i));
    }
    const auto scored = score(task.size());
    // acc: the likeliest choice; acc_norm: per character of the choice
    // (Python's len(), the harness's acc_norm); acc_bytes: per UTF-8 byte
    // (harness 0.4's acc_bytes). The two agree on ASCII choices.
    std::vector<double> acc, acc_norm, acc_bytes;
    for (size_t i = 0; i < scored.size(); ++i) {
      const ChoiceExample& ex = task.choices[i];
      std::vector<double> lls, per_char, per_byte;
      for (size_t c = 0; c < scored[i].size(); ++c) {
        lls.push_back(scored[i][c].logprob);
        per_char.push_back(scored[i][c].logprob / ex.lengths[c]);
        per_byte.push_back(scored[i][c].logprob / ex.byte_lengths[c]);
      }
      const auto gold = static_cast<size_t>(ex.gold);
      acc.push_back(argmax(lls) == gold ? 1.0 : 0.0);
      acc_norm.push_back(argmax(per_char) == gold ? 1.0 : 0.0);
      acc_bytes.push_back(argmax(per_byte) == gold ? 1.0 : 0.0);
    }
    result.metrics = {mean_metric("acc", acc)};
    if (task.has_acc_norm) {
      result.metrics.push_back(mean_metric("acc_norm", acc_norm));
      result.metrics.push_back(mean_metric("acc_bytes", acc_bytes));
    }
  }

  // Each sentence is scored whole after end-of-text (as the harness's
  // crows_pairs task); the stereotype is preferred when the tokens the two
  // sentences share are more likely in the `more` sentence.
  void pairs(const Task& task, TaskResult& result) {
    std::vector<std::vector<TokenId>> more_tokens, less_tokens;
    for (size_t i = 0; i < task.pairs.size(); ++i) {
      const PairExample& p = task.pairs[i];
      auto [ctx_more, more] = ev_.encode_pair("", p.more);
      auto [ctx_less, less] = ev_.encode_pair("", p.less);
      add_group({make_request(ctx_more, more, ev_.max_length()), make_request(ctx_less, less, ev_.max_length())},
                int64_t(i));
      more_tokens.push_back(std::move(more));
      less_tokens.push_back(std::move(less));
    }
    const auto scored = score(task.size());
    struct Acc {
      std::vector<double> shared, full, diff;
    };
    Acc all;
    std::map<std::string, Acc> by_category;
    for (size_t i = 0; i < scored.size(); ++i) {
      const ScoreResult &more = scored[i][0], &less = scored[i][1];
      const auto [in_more, in_less] = shared_tokens(more_tokens[i], less_tokens[i]);
      double s_more = 0, s_less = 0;
      for (size_t t = 0; t < in_more.size(); ++t) s_more += in_more[t] ? more.token_logprobs[t] : 0.0;
      for (size_t t = 0; t < in_less.size(); ++t) s_less += in_less[t] ? less.token_logprobs[t] : 0.0;
      for (Acc* a : {&all, &by_category[task.pairs[i].category]}) {
        a->shared.push_back(s_more > s_less ? 1.0 : 0.0);
        a->full.push_back(more.logprob > less.logprob ? 1.0 : 0.0);
        a->diff.push_back(std::abs(more.logprob - less.logprob));
      }
    }
    auto metrics = [](const Acc& a) {
      return std::vector<Metric>{mean_metric("pct_stereotype", a.shared), mean_metric("pct_stereotype_full", a.full),
                                 mean_metric("likelihood_difference", a.diff)};
    };
    result.metrics = metrics(all);
    for (const auto& [category, a] : by_category)
      result.categories.push_back({category, static_cast<int64_t>(a.shared.size()), metrics(a)});
  }

  Evaluator& ev_;
  const Tokenizer& tok_;
  const EvalOptions& options_;
  BatchScorer scorer_;
  std::vector<RequestGroup> groups_;
  std::vector<int64_t> example_of_;
};

}  // namespace

TaskResult Evaluator::run(const Task& task) {
  TaskResult result;
  result.name = task.name;
  result.kind = task.kind;
  result.n = task.size();
  if (result.n == 0) throw Error(fmt::format("task {} has no examples", task.name));
  const auto start = Clock::now();
  TaskRunner(*this, model_, tok_, options_).run(task, result);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace gptneo::eval
