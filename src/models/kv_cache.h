// Storage of one sequence's keys and values, layer by layer.
//
// Global layers keep every position [0, capacity). Local layers only ever
// look back window_size positions, so they keep a ring of window_size + slack
// slots: position p lives in slot p % slots. The slack lets a caller step
// back a few positions (speculative decoding rejects drafted tokens) without
// losing keys the next query needs.
//
// Each head's keys (and values) are kept together: attention reads one
// head's keys for every position, and this way that is one sequential
// stream. Stored position by position (all heads of a position together), a
// head's 256-byte pieces would lie a whole row apart (3 KB at gpt-neo-125M),
// which the hardware prefetchers do not follow. Values are [head][slot][dim];
// keys are in tiles of kernels::kKeyTile slots, each dimension-major
// ([head][tile][dim][slot in tile]), so that the scores of a query against
// 16 keys are 16-wide vector multiply-adds with no horizontal sums
// (kernels::attention_scores_tiled).
//
// Keys and values are float32, or IEEE half (KVCacheFormat::F16): half the
// memory, and half the bytes attention reads per token, which is what bounds
// decoding many sequences or long ones.
//
// All layers' keys and values are one block of memory, in 2 MB pages where
// the kernel gives them (core/stream_memory.h): attention reads each head's
// keys and values once per token, a few KB from each 4 KB page, and with
// small pages each of those reads begins with a TLB miss.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "gptneo/model.h"
#include "kernels/kernel_set.h"

namespace gptneo {

class KVCacheImpl {
 public:
  static constexpr int64_t kRingSlack = 64;

  KVCacheImpl(const ModelConfig& config, int64_t capacity, KVCacheFormat format = KVCacheFormat::F32);
  // A copy holds its own keys and values.
  KVCacheImpl(const KVCacheImpl& other);
  KVCacheImpl& operator=(const KVCacheImpl&) = delete;

  // The positions layer `layer` of a cache of `capacity` positions holds,
  // and the bytes such a cache takes (before making one).
  static int64_t layer_slots(const ModelConfig& config, int64_t layer, int64_t capacity);
  static size_t bytes_for(const ModelConfig& config, int64_t capacity, KVCacheFormat format);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }
  KVCacheFormat format() const { return format_; }
  size_t bytes() const;

  // The slot that position `pos` of `layer` is stored in.
  int64_t slot(int64_t layer, int64_t pos) const { return pos % layers_[layer].slots; }
  // The keys of head `head` in `layer`, in tiles (see the top of this file;
  // the layout kernels::attention_scores_tiled reads): slot s, dimension i
  // is at [(s / kKeyTile) × head_dim × kKeyTile + i × kKeyTile + s % kKeyTile].
  // E is float for a float32 cache, uint16_t (f16 bits) for an f16 one.
  template <class E>
  const E* key_tiles(int64_t layer, int64_t head) const {
    const Layer& l = layers_[layer];
    return data<E>(l.k) + head * l.tiles * head_dim_ * kernels::kKeyTile;
  }
  // The value vector (head_dim elements) of head `head` at `pos` in `layer`;
  // the values of consecutive slots follow each other.
  template <class E>
  const E* values(int64_t layer, int64_t head, int64_t pos) const {
    const Layer& l = layers_[layer];
    return data<E>(l.v) + (head * l.slots + slot(layer, pos)) * head_dim_;
  }
  // Write / read the key and value vectors (head_dim floats) of head `head`
  // at `pos` in `layer`. The position must still be held (see holds()).
  void store(int64_t layer, int64_t head, int64_t pos, const float* key, const float* value);
  void load(int64_t layer, int64_t head, int64_t pos, float* key, float* value) const;

  // The positions `layer` keeps: capacity(), or its ring's length; storing
  // position p overwrites position p - slots(layer).
  int64_t slots(int64_t layer) const { return layers_[layer].slots; }
  // Whether `layer` still holds position `pos` (< length()).
  bool holds(int64_t layer, int64_t pos) const {
    return pos >= 0 && pos < length_ && pos >= length_ - layers_[layer].slots;
  }

  // How many of the n positions from `pos` on lie in consecutive slots of
  // `layer` (a ring wraps around): their values follow each other from
  // values(layer, h, pos) on, and their keys are slots slot(layer, pos) + i
  // of key_tiles(layer, h).
  int64_t contiguous(int64_t layer, int64_t pos, int64_t n) const {
    const int64_t slots = layers_[layer].slots;
    return std::min(n, slots - pos % slots);
  }

  // Marks n more positions as filled (after the model stored them).
  void advance(int64_t n) { length_ += n; }
  void truncate(int64_t n);

 private:
  struct Layer {
    int64_t slots = 0;  // positions held: capacity, or a ring for local layers
    int64_t tiles = 0;  // key tiles per head: slots / kKeyTile, rounded up
    int64_t window = 0;  // 0 for global layers
    size_t k = 0, v = 0;  // where its keys and values start in storage_, in floats
  };
  // Elements are float32, or f16 bits two to a float's room.
  template <class E>
  const E* data(size_t at) const {
    return reinterpret_cast<const E*>(static_cast<const float*>(storage_.get()) + at);
  }
  template <class E>
  E* data(size_t at) {
    return reinterpret_cast<E*>(static_cast<float*>(storage_.get()) + at);
  }
  // Offsets of position `pos`'s key (dimension 0; the others kKeyTile
  // apart) and value (dimension 0; the others next) in their buffers.
  int64_t key_offset(int64_t layer, int64_t head, int64_t pos) const {
    const Layer& l = layers_[layer];
    const int64_t s = slot(layer, pos);
    return (head * l.tiles + s / kernels::kKeyTile) * head_dim_ * kernels::kKeyTile + s % kernels::kKeyTile;
  }
  int64_t value_offset(int64_t layer, int64_t head, int64_t pos) const {
    return (head * layers_[layer].slots + slot(layer, pos)) * head_dim_;
  }

  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t heads_ = 0;
  int64_t head_dim_ = 0;
  KVCacheFormat format_ = KVCacheFormat::F32;
  std::vector<Layer> layers_;
  size_t floats_ = 0;                // of storage_
  std::shared_ptr<void> storage_;   // every layer's keys, then values
};

}  // namespace gptneo
