#include "gptneo/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TokenId argmax(std::span<const float> logits) {
  // The first of equal maxima, as torch.argmax.
  return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

TokenId choose_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng) {
  if (logits.empty()) throw Error("choose_token: no logits");
  if (options.greedy || options.temperature <= 0.0f) return argmax(logits);

  // Candidates sorted by logit, best first; top-k cuts the list.
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  size_t keep = logits.size();
  if (options.top_k > 0) keep = std::min(keep, static_cast<size_t>(options.top_k));
  auto by_logit = [&](TokenId a, TokenId b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), by_logit);
  order.resize(keep);

  // Softmax of logits / temperature over the candidates, in double.
  std::vector<double> p(keep);
  const double mx = logits[order[0]] / options.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += p[i] = std::exp(logits[order[i]] / options.temperature - mx);
  for (auto& v : p) v /= sum;

  // top-p: the smallest prefix whose probability reaches top_p.
  if (options.top_p > 0.0f && options.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep && cum < options.top_p) cum += p[n++];
    p.resize(n);
  }
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (size_t i = 0; i < p.size(); ++i) {
    if (u < p[i]) return order[i];
    u -= p[i];
  }
  return order[p.size() - 1];
}

GenerateResult generate(Model& model, std::span<const TokenId> prompt, const GenerateOptions& options,
                        const TokenCallback& on_token) {
  const ModelConfig& cfg = model.config();
  if (prompt.empty()) throw Error("the prompt is empty: give at least one token");
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt > cfg.max_positions)
    throw Error(fmt::format("the prompt has {} tokens, more than the model's context of {} positions", n_prompt,
                            cfg.max_positions));
  GenerateResult result;
  result.prompt_tokens = n_prompt;
  result.seed = options.seed ? *options.seed : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  std::mt19937_64 rng(result.seed);
  const int64_t vocab = options.sample_vocab > 0 ? std::min(options.sample_vocab, cfg.vocab_size) : cfg.vocab_size;

  // The cache holds the prompt and every generated token but the last,
  // which is never fed back.
  const int64_t capacity = std::min(cfg.max_positions, n_prompt + std::max<int64_t>(options.max_new_tokens - 1, 0));
  KVCache cache = model.new_cache(std::max<int64_t>(capacity, 1));
  result.finish_reason = "length";
  if (options.max_new_tokens <= 0) return result;

  auto t0 = Clock::now();
  SequenceChunk chunk{&cache, prompt, false};
  Logits logits = model.forward({&chunk, 1});
  result.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();
  for (;;) {
    const TokenId next = choose_token({logits.row(0), static_cast<size_t>(vocab)}, options.sampling, rng);
    result.tokens.push_back(next);
    const bool keep_going = !on_token || on_token(next);
    if (options.stop_at_eos && cfg.eos_token_id >= 0 && next == cfg.eos_token_id) {
      result.finish_reason = "eos";
      break;
    }
    if (!keep_going) {
      result.finish_reason = "stop";
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= options.max_new_tokens) break;
    if (cache.length() + 1 > cfg.max_positions) {
      result.finish_reason = "context";
      break;
    }
    chunk.tokens = {&result.tokens.back(), 1};
    logits = model.forward({&chunk, 1});
  }
  result.decode_seconds = seconds_since(t0);
  return result;
}

}  // namespace gptneo
