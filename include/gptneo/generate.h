// Text generation: the decoding loop over a Model with a KV cache, and the
// choice of each next token (greedy or sampled).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gptneo/model.h"
#include "gptneo/tokenizer.h"

namespace gptneo {

struct SamplingOptions {
  bool greedy = false;       // always the most likely token (ignores the rest)
  float temperature = 0.8f;  // logits are divided by it; <= 0 means greedy
  int top_k = 0;             // keep the k most likely tokens (0: all)
  float top_p = 0.95f;       // keep the smallest set with this much probability (1: all)
};

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  SamplingOptions sampling;
  std::optional<uint64_t> seed;  // none: drawn from std::random_device, reported back
  bool stop_at_eos = true;       // stop after generating the end-of-text token
  // Ids at or above this are never generated (GPT-J pads its vocabulary past
  // the tokenizer's 50257). 0: the model's vocabulary size.
  int64_t sample_vocab = 0;
};

struct GenerateResult {
  std::vector<TokenId> tokens;  // the continuation (the end-of-text token included if generated)
  std::string finish_reason;    // "length", "eos" or "context" (the model's context is full)
  uint64_t seed = 0;
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called with each new token as it is chosen; return false to stop early.
using TokenCallback = std::function<bool(TokenId)>;

// Picks the next token from one row of logits. Deterministic for a given
// generator state.
TokenId choose_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng);

// Generates up to max_new_tokens after `prompt` (at least one token).
// Throws gptneo::Error when the prompt is empty or does not fit the context.
GenerateResult generate(Model& model, std::span<const TokenId> prompt, const GenerateOptions& options,
                        const TokenCallback& on_token = {});

}  // namespace gptneo
