#include "models/kv_cache.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

namespace {

int64_t key_tiles_for(int64_t slots) { return (slots + kernels::kKeyTile - 1) / kernels::kKeyTile; }

}  // namespace

int64_t KVCacheImpl::layer_slots(const ModelConfig& config, int64_t layer, int64_t capacity) {
  const bool local = config.attention[static_cast<size_t>(layer)] == AttentionKind::Local;
  const int64_t slots = local ? std::min(capacity, config.window_size + kRingSlack) : capacity;
  return std::max<int64_t>(slots, 1);
}

size_t KVCacheImpl::bytes_for(const ModelConfig& config, int64_t capacity) {
  size_t floats = 0;
  for (int64_t l = 0; l < static_cast<int64_t>(config.attention.size()); ++l) {
    const int64_t slots = layer_slots(config, l, capacity);
    floats += static_cast<size_t>((key_tiles_for(slots) * kernels::kKeyTile + slots) * config.hidden_size);
  }
  return floats * sizeof(float);
}

KVCacheImpl::KVCacheImpl(const ModelConfig& config, int64_t capacity)
    : capacity_(capacity), heads_(config.num_heads), head_dim_(config.head_dim()) {
  for (int64_t layer = 0; layer < static_cast<int64_t>(config.attention.size()); ++layer) {
    Layer l;
    l.window = config.attention[static_cast<size_t>(layer)] == AttentionKind::Local ? config.window_size : 0;
    l.slots = layer_slots(config, layer, capacity);
    l.tiles = key_tiles_for(l.slots);
    l.k.assign(static_cast<size_t>(heads_ * l.tiles * kernels::kKeyTile * head_dim_), 0.0f);
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
