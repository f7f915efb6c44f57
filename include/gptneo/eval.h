// Evaluation harness: the zero-shot tasks of EleutherAI's lm-evaluation-harness
// (LAMBADA, WikiText, HellaSwag, PIQA, Winogrande) computed with the same
// definitions, from JSONL task files, plus a CrowS-Pairs-style bias probe.
//
//   auto model = gptneo::Model::load("models/neo-mini");
//   auto tok = gptneo::Tokenizer::load("models/neo-mini");
//   gptneo::eval::Task task = gptneo::eval::load_task(gptneo::eval::TaskKind::Lambada, "lambada.jsonl");
//   gptneo::eval::Evaluator ev(*model, tok);
//   gptneo::eval::TaskResult r = ev.run(task);   // r.metric("acc")->value ...
//
// Task file shapes (one JSON object a line; docs/evaluation.md has the details):
//   perplexity:       {"text": S [, "words": N, "bytes": N]}
//   lambada:          {"text": S}
//   multiple_choice:  {"context": S, "choices": [S...], "gold": I [, "delimiter": S]}
//                  or {"contexts": [S...], "continuation": S, "gold": I [, "delimiter": S]}
//   pairs:            {"more": S, "less": S, "category": S}
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gptneo/model.h"
#include "gptneo/tokenizer.h"

namespace gptneo::eval {

enum class TaskKind { Perplexity, Lambada, MultipleChoice, Pairs };

// "perplexity", "lambada", "multiple_choice", "pairs".
std::string_view task_kind_name(TaskKind kind);
std::optional<TaskKind> task_kind_from_name(std::string_view name);

// ---- examples ---------------------------------------------------------------

// A document scored with the harness's loglikelihood_rolling. `words` and
// `bytes` are the counts the word/byte metrics divide by: those of the text
// before any detokenization (the harness counts WikiText's original page).
struct PerplexityDoc {
  std::string text;
  int64_t words = 0;  // len(re.split(r"\s+", original))
  int64_t bytes = 0;  // UTF-8 bytes of the original
};

// A choice between continuations: choice i is loglikelihood(contexts[i],
// continuations[i]). Plain multiple choice has one context and one
// continuation per choice; Winogrande's partial scoring has one context per
// option and a shared continuation.
struct ChoiceExample {
  std::vector<std::string> contexts;       // one per choice
  std::vector<std::string> continuations;  // one per choice
  std::vector<double> lengths;             // characters of each choice, for acc_norm
  std::vector<double> byte_lengths;        // UTF-8 bytes of each choice, for acc_bytes
  int64_t gold = 0;
};

// A CrowS-Pairs-style minimal pair: `more` states a stereotype, `less` the
// same sentence about another group.
struct PairExample {
  std::string more, less, category;
};

struct Task {
  std::string name;
  TaskKind kind = TaskKind::Lambada;
  bool has_acc_norm = true;  // multiple_choice: acc_norm/acc_bytes; false for the shared-continuation shape
  // Exactly one of these is filled, by kind (lambada uses `texts`).
  std::vector<PerplexityDoc> docs;
  std::vector<std::string> texts;
  std::vector<ChoiceExample> choices;
  std::vector<PairExample> pairs;

  int64_t size() const;
};

// Reads a JSONL task file; keeps the first `limit` examples (0: all). The
// name is the file's stem. Throws gptneo::Error naming the file and line of
// any malformed example.
Task load_task(TaskKind kind, const std::filesystem::path& file, int64_t limit = 0);
// The same from the file's text; `where` names it in errors.
Task parse_task(TaskKind kind, std::string_view jsonl, const std::string& name, const std::string& where,
                int64_t limit = 0);

// ---- results ----------------------------------------------------------------

struct Metric {
  std::string name;
  double value = 0;
  std::optional<double> stderr_value;  // none where the harness reports "N/A"
};

struct CategoryResult {
  std::string category;
  int64_t n = 0;
  std::vector<Metric> metrics;
};

struct TaskResult {
  std::string name;
  TaskKind kind = TaskKind::Lambada;
  int64_t n = 0;  // examples
  std::vector<Metric> metrics;
  std::vector<CategoryResult> categories;  // pairs: one per category, sorted by name
  double seconds = 0;                      // wall time of scoring
  int64_t tokens = 0;                      // tokens run through the model

  const Metric* metric(std::string_view name) const;
  double examples_per_second() const { return seconds > 0 ? double(n) / seconds : 0; }
};

// ---- scoring ----------------------------------------------------------------

// How a (context, continuation) pair becomes tokens.
enum class PairEncoding {
  // Context and continuation tokenized separately and concatenated
  // (lm-evaluation-harness up to 0.3, the version of GPT-Neo's table).
  Separate,
  // Harness 0.4: the context's trailing whitespace moves to the
  // continuation, the whole text is tokenized, and the continuation is what
  // follows the context's own tokens.
  Joint,
};

struct EvalOptions {
  int64_t batch = 16;         // examples per forward pass
  int64_t max_tokens = 4096;  // tokens per forward pass (one example may exceed it)
  // KV-cache memory the batch may hold; batches shrink to stay within it.
  size_t cache_bytes = size_t(2) << 30;
  int64_t bootstrap_iters = 100000;  // as the harness; 0: no bootstrap stderr
  PairEncoding pair_encoding = PairEncoding::Separate;
  // Called after each batch with (examples done, examples in the task).
  std::function<void(int64_t, int64_t)> progress;
};

// The log-likelihood of one continuation, as the harness's loglikelihood().
struct Loglikelihood {
  double logprob = 0;                // sum over the continuation's tokens
  bool is_greedy = true;             // every continuation token is the argmax
  std::vector<double> token_logprobs;  // one per continuation token
};

class Evaluator {
 public:
  Evaluator(Model& model, const Tokenizer& tokenizer, EvalOptions options = {});

  TaskResult run(const Task& task);

  // The harness's loglikelihood(context, continuation) for each request;
  // an empty context is the end-of-text token. Requests given in one group
  // share the work of their common prefix.
  std::vector<Loglikelihood> loglikelihood(std::span<const std::pair<std::string, std::string>> requests);
  // The harness's loglikelihood_rolling(text): the sum of every token's
  // log-probability, in windows of the model's context, the first token
  // conditioned on end-of-text.
  double loglikelihood_rolling(std::string_view text);

  // The tokens the harness scores for (context, continuation), before
  // truncation: context (end-of-text when empty) and continuation.
  std::pair<std::vector<TokenId>, std::vector<TokenId>> encode_pair(std::string_view context,
                                                                    std::string_view continuation) const;

  int64_t max_length() const;
  const EvalOptions& options() const { return options_; }

 private:
  Model& model_;
  const Tokenizer& tok_;
  EvalOptions options_;
};

// ---- converters for the published data sets --------------------------------

// The data sets `gptneo eval --prepare` knows: lambada_openai, hellaswag,
// piqa, winogrande, wikitext.
std::vector<std::string> preparable_datasets();
// Turns a data set's downloaded release files into a task file (JSONL text).
// Returns the task kind the file is for. Throws gptneo::Error naming the file
// and line of anything unexpected.
TaskKind prepare_dataset(std::string_view dataset, std::span<const std::filesystem::path> files, std::string& jsonl);

}  // namespace gptneo::eval
