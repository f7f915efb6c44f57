#include "gptneo/scoring.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

double token_nll(std::span<const float> logits, TokenId target) {
  if (target < 0 || static_cast<size_t>(target) >= logits.size())
    throw Error(fmt::format("token id {} is outside the model's vocabulary [0, {})", target, logits.size()));
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (const float v : logits) sum += std::exp(double(v) - mx);
  return mx + std::log(sum) - double(logits[static_cast<size_t>(target)]);
}

TokenScores score_tokens(Model& model, std::span<const TokenId> tokens) {
  if (tokens.empty()) throw Error("nothing to score: no tokens");
  TokenScores out;
  const size_t n = tokens.size();
  out.nll.resize(n - 1);
  out.argmax.resize(n);
  KVCache cache = model.new_cache(static_cast<int64_t>(n));
  const SequenceChunk chunk{&cache, tokens, true};
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  model.forward({&chunk, 1}, [&](int64_t first, int64_t rows, const float* logits) {
    for (int64_t r = 0; r < rows; ++r) {
      const std::span<const float> row(logits + r * static_cast<int64_t>(vocab), vocab);
      const size_t t = static_cast<size_t>(first + r);
      out.argmax[t] = static_cast<TokenId>(std::max_element(row.begin(), row.end()) - row.begin());
      if (t + 1 < n) out.nll[t] = token_nll(row, tokens[t + 1]);
    }
  });
  return out;
}

PerplexityResult perplexity(Model& model, std::span<const TokenId> tokens, const PerplexityOptions& options) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t max_ctx = model.config().max_positions;
  const int64_t context = options.context > 0 ? options.context : max_ctx;
  const int64_t stride = options.stride > 0 ? options.stride : context;
  if (context > max_ctx)
    throw Error(fmt::format("--context {} exceeds the model's maximum of {} positions", context, max_ctx));
  if (stride > context) throw Error(fmt::format("--stride {} is larger than --context {}", stride, context));
  if (n < 2) throw Error(fmt::format("the text has {} token(s); perplexity needs at least 2", n));

  // The windows [begin, end) that will be scored.
  std::vector<std::pair<int64_t, int64_t>> windows;
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + context, n);
    windows.emplace_back(begin, end);
    if (end == n || (options.max_windows > 0 && static_cast<int64_t>(windows.size()) == options.max_windows)) break;
  }

  PerplexityResult result;
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  int64_t prev_end = 0;
  KVCache cache = model.new_cache(std::min(context, n));
  for (const auto& [begin, end] : windows) {
    // Targets are the tokens past the previous window's end; position 0 of a
    // window has nothing before it and cannot be scored.
    const int64_t first_target = std::max(prev_end, begin + 1);
    cache.clear();
    // Row i of the window predicts token begin + i + 1: rows before
    // first_target - 1 are not needed.
    const int64_t skip = first_target - 1 - begin;
    const SequenceChunk chunk{&cache, tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)),
                              true, skip};
    model.forward({&chunk, 1}, [&](int64_t first, int64_t rows, const float* logits) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t target = begin + skip + first + r + 1;  // the token this row predicts
        if (target < first_target || target >= end) continue;
        result.nll_sum += token_nll({logits + r * static_cast<int64_t>(vocab), vocab}, tokens[static_cast<size_t>(target)]);
        ++result.tokens_scored;
      }
    });
    prev_end = end;
    ++result.windows;
    if (options.progress) options.progress(result.windows, static_cast<int64_t>(windows.size()));
  }
  result.perplexity = std::exp(result.nll_sum / static_cast<double>(result.tokens_scored));
  return result;
}

}  // namespace gptneo
