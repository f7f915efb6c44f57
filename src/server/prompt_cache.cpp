#include "server/prompt_cache.h"

#include <algorithm>

#include "server/kv_memory.h"

namespace gptneo::server {

namespace {

int64_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b) {
  const auto n = std::min(a.size(), b.size());
  return static_cast<int64_t>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first -
                              a.begin());
}

}  // namespace

PromptCache::PromptCache(const Model& model, size_t budget_bytes, int64_t min_tokens)
    : model_(model), budget_(budget_bytes), min_tokens_(std::max<int64_t>(1, min_tokens)) {
  stats_.budget = budget_bytes;
}

bool PromptCache::usable(const Entry& e, int64_t n) const { return kv_prefix_usable(model_.config(), e.cache, n); }

std::optional<PromptCache::Hit> PromptCache::lookup(std::span<const TokenId> prompt, int64_t capacity) {
  if (budget_ == 0) return std::nullopt;
  ++stats_.lookups;
  const int64_t most = std::min<int64_t>(static_cast<int64_t>(prompt.size()) - 1, capacity);
  auto best = entries_.end();
  int64_t best_len = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const int64_t len = std::min(common_prefix(it->tokens, prompt), most);
    if (len > best_len && len >= min_tokens_ && usable(*it, len)) {
      best = it;
      best_len = len;
    }
  }
  if (best == entries_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, best);
  ++stats_.hits;
  stats_.hit_tokens += static_cast<uint64_t>(best_len);
  return Hit{copy_kv_prefix(model_, best->cache, best_len, capacity), best_len};
}

void PromptCache::insert(std::span<const TokenId> tokens, const KVCache& cache) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (budget_ == 0 || n < min_tokens_ || cache.length() != n || !kv_prefix_usable(model_.config(), cache, n)) return;
  if (kv_cache_bytes(model_, n) > budget_) return;
  // Already known: an entry that starts with these tokens and can give all of them.
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (static_cast<int64_t>(it->tokens.size()) >= n && common_prefix(it->tokens, tokens) == n && usable(*it, n)) {
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
  Entry e{{tokens.begin(), tokens.end()}, copy_kv_prefix(model_, cache, n, n)};
  // Entries the new one replaces: its prefixes, when it can give them.
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto len = static_cast<int64_t>(it->tokens.size());
    if (len <= n && common_prefix(it->tokens, tokens) == len && usable(e, len)) {
      bytes_ -= it->cache.bytes();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  bytes_ += e.cache.bytes();
  entries_.push_front(std::move(e));
  evict();
}

void PromptCache::evict() {
  while (bytes_ > budget_ && !entries_.empty()) {
    bytes_ -= entries_.back().cache.bytes();
    entries_.pop_back();
  }
}

PromptCache::Stats PromptCache::stats() const {
  Stats s = stats_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace gptneo::server
