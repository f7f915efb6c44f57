// Token-level requests, shaped exactly as the harness's HF model shapes them
// (lm_eval/models/huggingface.py, _loglikelihood_tokens and
// loglikelihood_rolling).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::eval {

// One continuation to score. The model reads tokens[0 .. n-2]; the last
// `scored` tokens are the targets (each predicted from the tokens before it).
struct ScoreRequest {
  std::vector<TokenId> tokens;
  int64_t scored = 0;

  int64_t input_length() const { return static_cast<int64_t>(tokens.size()) - 1; }
  // Input position of the first target's prediction.
  int64_t first_scored_position() const { return input_length() - scored; }
};

// (context + continuation)[-(max_length + 1):], scoring the continuation:
// the context is cut from the left so the model's input fits max_length.
// Throws gptneo::Error when the continuation alone has more than max_length
// tokens (the harness would score a wrong slice), or is empty.
ScoreRequest make_request(std::span<const TokenId> context, std::span<const TokenId> continuation, int64_t max_length);

// The harness's rolling windows over a document (get_rolling_token_windows
// with context_len 1, made disjoint): the first window predicts up to
// max_length tokens from the prefix token on; each next window predicts the
// next max_length tokens (fewer at the end), reading the max_length tokens
// before each. Every token is scored exactly once. Empty for no tokens.
std::vector<ScoreRequest> rolling_windows(std::span<const TokenId> tokens, TokenId prefix_token, int64_t max_length);

}  // namespace gptneo::eval
