// KV-cache sizes for the server's memory budget, and copying the first
// positions of a cache into a new one (the prompt cache's reuse).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gptneo/model.h"

namespace gptneo::server {

// Bytes of a cache of `capacity` positions (KVCache::bytes() of a new one
// from model.new_cache).
size_t kv_cache_bytes(const Model& model, int64_t capacity);

// Whether `cache` still holds what a sequence continuing after its first n
// positions needs (local layers only keep their last positions).
bool kv_prefix_usable(const ModelConfig& config, const KVCache& cache, int64_t n);
// A new cache of `capacity` positions holding the first n positions of
// `cache` (kv_prefix_usable must be true; n <= capacity).
KVCache copy_kv_prefix(const Model& model, const KVCache& cache, int64_t n, int64_t capacity);

}  // namespace gptneo::server
