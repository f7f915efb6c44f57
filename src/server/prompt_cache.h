// The prompt cache: keys and values of recent sequences, so that a request
// whose prompt starts like one of them (the same system prompt, a chat that
// goes on) only runs its new tokens through the model.
//
// Entries are kept compact (capacity = length) and evicted least recently
// used first beyond a byte budget. Only the scheduler thread uses it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <vector>

#include "gptneo/model.h"

namespace gptneo::server {

class PromptCache {
 public:
  // Prefixes shorter than min_tokens are not worth a lookup hit.
  PromptCache(const Model& model, size_t budget_bytes, int64_t min_tokens = 8);

  struct Hit {
    KVCache cache;       // a new cache holding the first `length` tokens of the prompt
    int64_t length = 0;
  };
  // The longest cached prefix of `prompt`, leaving at least its last token
  // to run (its logits are needed), copied into a new cache of `capacity`.
  std::optional<Hit> lookup(std::span<const TokenId> prompt, int64_t capacity);
  // Keeps a copy of `cache`, which holds exactly `tokens`.
  void insert(std::span<const TokenId> tokens, const KVCache& cache);

  struct Stats {
    uint64_t lookups = 0, hits = 0, hit_tokens = 0;
    size_t entries = 0, bytes = 0, budget = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::vector<TokenId> tokens;
    KVCache cache;
  };
  // Whether `e` can give the first n tokens.
  bool usable(const Entry& e, int64_t n) const;
  void evict();

  const Model& model_;
  size_t budget_;
  int64_t min_tokens_;
  std::list<Entry> entries_;  // most recently used first
  size_t bytes_ = 0;
  Stats stats_;
};

}  // namespace gptneo::server
