#include "models/kv_cache.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

KVCacheImpl::KVCacheImpl(const ModelConfig& config, int64_t capacity)
    : capacity_(capacity), heads_(config.num_heads), head_dim_(config.head_dim()) {
  for (const AttentionKind kind : config.attention) {
    Layer l;
    l.window = kind == AttentionKind::Local ? config.window_size : 0;
    l.slots = l.window > 0 ? std::min(capacity, l.window + kRingSlack) : capacity;
    l.slots = std::max<int64_t>(l.slots, 1);
    l.k.assign(static_cast<size_t>(heads_ * l.slots * head_dim_), 0.0f);
    l.v.assign(static_cast<size_t>(heads_ * l.slots * head_dim_), 0.0f);
    layers_.push_back(std::move(l));
  }
}

size_t KVCacheImpl::bytes() const {
  size_t n = 0;
  for (const auto& l : layers_) n += (l.k.size() + l.v.size()) * sizeof(float);
  return n;
}

void KVCacheImpl::truncate(int64_t n) {
  if (n < 0 || n > length_)
    throw Error(fmt::format("cannot truncate a KV cache of length {} to {}", length_, n));
  for (const auto& l : layers_) {
    // The next query (position n) of a local layer needs keys back to
    // n - window + 1; they must not have been overwritten by later positions.
    if (l.window > 0 && n > 0 && std::max<int64_t>(0, n - l.window + 1) < length_ - l.slots)
      throw Error(fmt::format("cannot step a KV cache back from {} to {} positions: more than {} "
                              "positions past the local window",
                              length_, n, kRingSlack));
  }
  length_ = n;
}

// ---- the public handle ------------------------------------------------------

KVCache::KVCache() = default;
KVCache::KVCache(std::unique_ptr<KVCacheImpl> impl) : impl_(std::move(impl)) {}
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;
KVCache::~KVCache() = default;

int64_t KVCache::length() const { return impl_ ? impl_->length() : 0; }
int64_t KVCache::capacity() const { return impl_ ? impl_->capacity() : 0; }
size_t KVCache::bytes() const { return impl_ ? impl_->bytes() : 0; }
void KVCache::truncate(int64_t n) {
  if (impl_) impl_->truncate(n);
}
KVCache KVCache::copy() const {
  return impl_ ? KVCache(std::make_unique<KVCacheImpl>(*impl_)) : KVCache();
}

}  // namespace gptneo
