// The history-dependent logits processors (bias, penalties, n-gram and word
// bans, minimum length) and the sampling warpers (temperature, top-k, top-p,
// min-p, typical-p). The order is documented in include/gptneo/generate.h.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gptneo/generate.h"

namespace gptneo {

// The tokens that would complete a banned word, precomputed once per request
// from the vocabulary (see SamplingOptions::banned_words).
class WordBans {
 public:
  WordBans(const std::vector<std::string>& words, const Tokenizer& tokenizer, int64_t vocab);
  // Sets to -inf the logit of every token that would complete a banned word
  // after `tail` (the last bytes of prompt + output; `whole`: tail is the
  // entire text, so its start is a word boundary).
  void apply(std::string_view tail, bool whole, std::span<float> scores) const;
  size_t longest() const { return longest_; }

 private:
  struct Word {
    std::string bytes;
    // completing[k]: tokens whose bytes begin with bytes[k:] (k = 0: the
    // whole word), banned when the text ends with bytes[:k] at a word start.
    std::vector<std::vector<TokenId>> completing;
  };
  std::vector<Word> words_;
  std::vector<TokenId> always_;  // tokens holding a whole word after an inner boundary
  size_t longest_ = 0;
};

class LogitsProcessor {
 public:
  LogitsProcessor(const GenerateOptions& options, const DecodeContext& context, std::span<const TokenId> prompt);
  std::unique_ptr<LogitsProcessor> clone() const { return std::make_unique<LogitsProcessor>(*this); }

  // Records a generated token.
  void push(TokenId id);
  // Applies processors 1-6 in order to scores[0, vocab), in place.
  void apply(std::span<float> scores) const;
  int64_t generated() const { return static_cast<int64_t>(history_.size() - prompt_len_); }

 private:
  void append_text(TokenId id);

  SamplingOptions sampling_;
  int64_t min_new_tokens_ = 0;
  TokenId eos_ = -1;
  const Tokenizer* tokenizer_ = nullptr;
  std::shared_ptr<const WordBans> bans_;
  std::vector<TokenId> history_;  // prompt + generated
  size_t prompt_len_ = 0;
  std::unordered_set<TokenId> seen_;                 // distinct tokens of the history (repetition penalty)
  std::unordered_map<TokenId, int> generated_count_;  // presence / frequency penalties
  std::string tail_;                                  // last bytes of the text (banned words)
  bool tail_whole_ = true;
};

// Warpers 7-11 on processed scores (modified in place), then the softmax of
// what is left. Throws gptneo::Error when every token has been banned.
Distribution sampling_distribution(std::span<float> scores, const SamplingOptions& options);
// All mass on the first largest score.
Distribution greedy_distribution(std::span<const float> scores);
// log-softmax of a raw logits row, in double.
std::vector<double> log_softmax(std::span<const float> logits);
// The k largest entries of `values` (value desc, index asc).
std::vector<std::pair<TokenId, float>> top_entries(std::span<const float> values, int k);
std::vector<std::pair<TokenId, float>> top_entries(std::span<const double> values, int k);

}  // namespace gptneo
