#include "models/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/dtype.h"
#include "core/stream_memory.h"
#include "gptneo/error.h"
#include "kernels/kernels.h"

namespace gptneo {

namespace {

int64_t key_tiles_for(int64_t slots) { return (slots + kernels::kKeyTile - 1) / kernels::kKeyTile; }

// Floats of storage for n elements (f16: two per float), rounded up to
// whole cache lines so that each layer's keys and values start on one.
size_t floats_for(int64_t n, KVCacheFormat format) {
  const auto floats = static_cast<size_t>(format == KVCacheFormat::F16 ? (n + 1) / 2 : n);
  return (floats + 15) / 16 * 16;
}

// Floats a layer of `slots` positions keeps for its keys (in whole tiles)
// and for its values: what bytes_for() adds up and the constructor lays out.
size_t key_floats(int64_t slots, int64_t hidden, KVCacheFormat format) {
  return floats_for(key_tiles_for(slots) * kernels::kKeyTile * hidden, format);
}
size_t value_floats(int64_t slots, int64_t hidden, KVCacheFormat format) {
  return floats_for(slots * hidden, format);
}

}  // namespace

int64_t KVCacheImpl::layer_slots(const ModelConfig& config, int64_t layer, int64_t capacity) {
  const bool local = config.attention[static_cast<size_t>(layer)] == AttentionKind::Local;
  const int64_t slots = local ? std::min(capacity, config.window_size + kRingSlack) : capacity;
  return std::max<int64_t>(slots, 1);
}

size_t KVCacheImpl::bytes_for(const ModelConfig& config, int64_t capacity, KVCacheFormat format) {
  size_t bytes = 0;
  for (int64_t l = 0; l < static_cast<int64_t>(config.attention.size()); ++l) {
    const int64_t slots = layer_slots(config, l, capacity);
    bytes += (key_floats(slots, config.hidden_size, format) + value_floats(slots, config.hidden_size, format)) *
             sizeof(float);
  }
  return bytes;
}

KVCacheImpl::KVCacheImpl(const ModelConfig& config, int64_t capacity, KVCacheFormat format)
    : capacity_(capacity), heads_(config.num_heads), head_dim_(config.head_dim()), format_(format) {
  for (int64_t layer = 0; layer < static_cast<int64_t>(config.attention.size()); ++layer) {
    Layer l;
    l.window = config.attention[static_cast<size_t>(layer)] == AttentionKind::Local ? config.window_size : 0;
    l.slots = layer_slots(config, layer, capacity);
    l.tiles = key_tiles_for(l.slots);
    l.k = floats_;
    floats_ += key_floats(l.slots, heads_ * head_dim_, format);
    l.v = floats_;
    floats_ += value_floats(l.slots, heads_ * head_dim_, format);
    layers_.push_back(l);
  }
  storage_ = allocate_stream_memory(std::max<size_t>(floats_, 1) * sizeof(float));
  std::memset(storage_.get(), 0, floats_ * sizeof(float));
}

KVCacheImpl::KVCacheImpl(const KVCacheImpl& other)
    : length_(other.length_),
      capacity_(other.capacity_),
      heads_(other.heads_),
      head_dim_(other.head_dim_),
      format_(other.format_),
      layers_(other.layers_),
      floats_(other.floats_),
      storage_(allocate_stream_memory(std::max<size_t>(floats_, 1) * sizeof(float))) {
  std::memcpy(storage_.get(), other.storage_.get(), floats_ * sizeof(float));
}

size_t KVCacheImpl::bytes() const { return floats_ * sizeof(float); }

void KVCacheImpl::store(int64_t layer, int64_t head, int64_t pos, const float* key, const float* value) {
  Layer& l = layers_[layer];
  const int64_t ko = key_offset(layer, head, pos), vo = value_offset(layer, head, pos);
  if (format_ == KVCacheFormat::F16) {
    // (kernels::to_f16 keeps values beyond half's range at ±65504: an
    // infinity would make NaN of every score or output it enters. Scalar
    // conversions took a fifth of a batch-8 decode step's attention.)
    kernels::to_f16(value, head_dim_, data<uint16_t>(l.v) + vo);
    // A key goes dimension-major into its tile: converted a piece of a row
    // at a time, then spread.
    uint16_t* k = data<uint16_t>(l.k) + ko;
    constexpr int64_t kPiece = 256;
    uint16_t row[kPiece];
    for (int64_t i0 = 0; i0 < head_dim_; i0 += kPiece) {
      const int64_t n = std::min<int64_t>(kPiece, head_dim_ - i0);
      kernels::to_f16(key + i0, n, row);
      for (int64_t i = 0; i < n; ++i) k[(i0 + i) * kernels::kKeyTile] = row[i];
    }
  } else {
    float* k = data<float>(l.k) + ko;
    for (int64_t i = 0; i < head_dim_; ++i) k[i * kernels::kKeyTile] = key[i];
    std::copy(value, value + head_dim_, data<float>(l.v) + vo);
  }
}

void KVCacheImpl::load(int64_t layer, int64_t head, int64_t pos, float* key, float* value) const {
  const Layer& l = layers_[layer];
  const int64_t ko = key_offset(layer, head, pos), vo = value_offset(layer, head, pos);
  if (format_ == KVCacheFormat::F16) {
    const uint16_t* k = data<uint16_t>(l.k) + ko;
    const uint16_t* v = data<uint16_t>(l.v) + vo;
    for (int64_t i = 0; i < head_dim_; ++i) {
      key[i] = f16_to_f32(k[i * kernels::kKeyTile]);
      value[i] = f16_to_f32(v[i]);
    }
  } else {
    const float* k = data<float>(l.k) + ko;
    for (int64_t i = 0; i < head_dim_; ++i) key[i] = k[i * kernels::kKeyTile];
    const float* v = data<float>(l.v) + vo;
    std::copy(v, v + head_dim_, value);
  }
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
