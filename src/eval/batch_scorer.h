// Scores many continuations with few forward passes.
//
// Requests come in groups (the choices of one example). A group's requests
// usually share a prefix (the context): it runs once, and its KV cache is
// copied for each request, which then runs only its own tokens. Several
// groups run in one forward pass (the model packs the sequences without
// padding), and only the rows that predict scored tokens get logits.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "eval/requests.h"
#include "gptneo/model.h"

namespace gptneo::eval {

struct ScoreResult {
  double logprob = 0;  // sum of token_logprobs
  bool greedy = true;  // every scored token is the argmax of its row (first index on ties)
  std::vector<double> token_logprobs;
};

struct BatchLimits {
  int64_t groups = 16;         // groups per pass
  int64_t tokens = 4096;       // tokens run per pass
  size_t cache_bytes = size_t(2) << 30;  // KV caches held per pass
};

using RequestGroup = std::vector<ScoreRequest>;

// The number of leading input tokens a group's requests can share: their
// common prefix, short enough that no scored prediction but the prefix's last
// lies inside it. 0 when there is nothing to share.
int64_t shared_prefix_length(const RequestGroup& group);

class BatchScorer {
 public:
  BatchScorer(Model& model, BatchLimits limits);

  // Results in the shape of `groups`. `progress(groups done)` after each pass.
  std::vector<std::vector<ScoreResult>> score(const std::vector<RequestGroup>& groups,
                                              const std::function<void(int64_t)>& progress = {});
  // Tokens run through the model so far (prefixes once, then each suffix).
  int64_t tokens_run() const { return tokens_run_; }

 private:
  void run_pass(const std::vector<RequestGroup>& groups, size_t begin, size_t end,
                std::vector<std::vector<ScoreResult>>& out);

  Model& model_;
  BatchLimits limits_;
  size_t bytes_per_position_ = 0;
  int64_t tokens_run_ = 0;
  std::vector<float> scratch_;  // one row of probabilities
};

}  // namespace gptneo::eval
