// Scoring text with a model: per-token negative log-likelihoods, and
// perplexity over long texts with the sliding-window method.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "gptneo/model.h"

namespace gptneo {

struct TokenScores {
  std::vector<double> nll;       // nll[t] = -log p(tokens[t+1] | tokens[..t]); n-1 values
  std::vector<TokenId> argmax;   // the most likely next token after each position; n values
};

// Scores a sequence in one pass (it must fit the model's context).
TokenScores score_tokens(Model& model, std::span<const TokenId> tokens);

// -log softmax(logits)[target], computed in double precision.
double token_nll(std::span<const float> logits, TokenId target);

struct PerplexityOptions {
  int64_t context = 0;      // tokens per window (0: the model's maximum)
  int64_t stride = 0;       // a window starts every `stride` tokens (0: = context)
  int64_t max_windows = 0;  // use only the first K windows (0: all)
  // Called after each window with (windows done, windows in all).
  std::function<void(int64_t, int64_t)> progress;
};

struct PerplexityResult {
  double perplexity = 0;
  double nll_sum = 0;
  int64_t tokens_scored = 0;
  int64_t windows = 0;
};

// The sliding-window perplexity of the Hugging Face perplexity guide: each
// window scores only the tokens that no earlier window scored, each with as
// much of the window before it as context as there is.
PerplexityResult perplexity(Model& model, std::span<const TokenId> tokens, const PerplexityOptions& options);

}  // namespace gptneo
