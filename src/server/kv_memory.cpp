#include "server/kv_memory.h"

#include <algorithm>
#include <vector>

#include "gptneo/error.h"
#include "models/kv_cache.h"

namespace gptneo::server {

namespace {

int64_t window_of(const ModelConfig& config, int64_t layer) {
  return config.attention[static_cast<size_t>(layer)] == AttentionKind::Local ? config.window_size : 0;
}

// The oldest position a sequence continuing at position n reads in `layer`:
// a local layer's query at n attends to keys from n - window + 1 on.
int64_t oldest_needed(const ModelConfig& config, int64_t layer, int64_t n) {
  const int64_t window = window_of(config, layer);
  return window > 0 ? std::max<int64_t>(0, n - window + 1) : 0;
}

}  // namespace

size_t kv_cache_bytes(const Model& model, int64_t capacity) {
  return KVCacheImpl::bytes_for(model.config(), capacity, model.kv_cache_format());
}

bool kv_prefix_usable(const ModelConfig& config, const KVCache& cache, int64_t n) {
  if (n <= 0 || n > cache.length()) return false;
  const KVCacheImpl& c = cache.impl();
  for (int64_t l = 0; l < c.layers(); ++l)
    if (!c.holds(l, oldest_needed(config, l, n))) return false;
  return true;
}

KVCache copy_kv_prefix(const Model& model, const KVCache& cache, int64_t n, int64_t capacity) {
  const ModelConfig& config = model.config();
  if (!kv_prefix_usable(config, cache, n) || n > capacity)
    throw Error("copy_kv_prefix: the cache no longer holds the positions asked for");
  KVCache out = model.new_cache(capacity);
  const KVCacheImpl& src = cache.impl();
  KVCacheImpl& dst = out.impl();
  std::vector<float> key(static_cast<size_t>(src.head_dim())), value(key.size());
  for (int64_t l = 0; l < src.layers(); ++l) {
    // Every position the new cache keeps that the old one still holds (at
    // least those a continuation reads); older ones are never read again.
    int64_t pos = std::max<int64_t>(0, n - KVCacheImpl::layer_slots(config, l, capacity));
    while (!src.holds(l, pos)) ++pos;
    while (pos < n) {
      const int64_t run = std::min(src.contiguous(l, pos, n - pos), dst.contiguous(l, pos, n - pos));
      for (int64_t h = 0; h < src.heads(); ++h)
        for (int64_t i = 0; i < run; ++i) {
          src.load(l, h, pos + i, key.data(), value.data());
          dst.store(l, h, pos + i, key.data(), value.data());
        }
      pos += run;
    }
  }
  dst.advance(n);
  return out;
}

}  // namespace gptneo::server
