#include "eval/requests.h"

#include <algorithm>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::eval {

ScoreRequest make_request(std::span<const TokenId> context, std::span<const TokenId> continuation, int64_t max_length) {
  const auto cont = static_cast<int64_t>(continuation.size());
  if (cont == 0) throw Error("a continuation to score has no tokens");
  if (cont > max_length)
    throw Error(fmt::format("a continuation of {} tokens does not fit the model's context of {} tokens", cont,
                            max_length));
  // The input is the last max_length + 1 tokens; it always holds the whole
  // continuation and at least one token before it.
  const int64_t keep_context = std::min<int64_t>(static_cast<int64_t>(context.size()), max_length + 1 - cont);
  ScoreRequest r;
  r.tokens.reserve(static_cast<size_t>(keep_context + cont));
  r.tokens.insert(r.tokens.end(), context.end() - keep_context, context.end());
  r.tokens.insert(r.tokens.end(), continuation.begin(), continuation.end());
  r.scored = cont;
  return r;
}

std::vector<ScoreRequest> rolling_windows(std::span<const TokenId> tokens, TokenId prefix_token, int64_t max_length) {
  std::vector<ScoreRequest> windows;
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return windows;
  // First window: the prefix token, then the tokens it predicts.
  const int64_t first = std::min(max_length, n);
  ScoreRequest w;
  w.tokens.push_back(prefix_token);
  w.tokens.insert(w.tokens.end(), tokens.begin(), tokens.begin() + first);
  w.scored = first;
  windows.push_back(std::move(w));
  // Later windows end at `end` and predict `count` tokens; their input is the
  // max_length tokens before `end` (the tokens of earlier windows serve as
  // context only).
  for (int64_t predicted = first; predicted < n;) {
    const int64_t count = std::min(max_length, n - predicted);
    const int64_t end = predicted + count;
    ScoreRequest next;
    next.tokens.assign(tokens.begin() + (end - max_length - 1), tokens.begin() + end);
    next.scored = count;
    windows.push_back(std::move(next));
    predicted = end;
  }
  return windows;
}

}  // namespace gptneo::eval
