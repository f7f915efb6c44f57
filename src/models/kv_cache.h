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
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "gptneo/model.h"
#include "kernels/kernel_set.h"

namespace gptneo {

class KVCacheImpl {
 public:
  static constexpr int64_t kRingSlack = 64;

  KVCacheImpl(const ModelConfig& config, int64_t capacity);

  // The positions layer `layer` of a cache of `capacity` positions holds,
  // and the bytes such a cache takes (before making one).
  static int64_t layer_slots(const ModelConfig& config, int64_t layer, int64_t capacity);
  static size_t bytes_for(const ModelConfig& config, int64_t capacity);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }
  size_t bytes() const;

  // The slot that position `pos` of `layer` is stored in.
  int64_t slot(int64_t layer, int64_t pos) const { return pos % layers_[layer].slots; }
  // The keys of head `head` in `layer`, in tiles (see the top of this file;
  // the layout kernels::attention_scores_tiled reads): slot s, dimension i
  // is at [(s / kKeyTile) × head_dim × kKeyTile + i × kKeyTile + s % kKeyTile].
  const float* key_tiles(int64_t layer, int64_t head) const {
    const Layer& l = layers_[layer];
    return l.k.data() + head * l.tiles * head_dim_ * kernels::kKeyTile;
  }
  // Writes / reads the key vector (head_dim floats) of head `head` at `pos`.
  void store_key(int64_t layer, int64_t head, int64_t pos, const float* key) {
    float* k = key_at(layer, head, pos);
    for (int64_t i = 0; i < head_dim_; ++i) k[i * kernels::kKeyTile] = key[i];
  }
  void load_key(int64_t layer, int64_t head, int64_t pos, float* key) const {
    const float* k = key_at(layer, head, pos);
    for (int64_t i = 0; i < head_dim_; ++i) key[i] = k[i * kernels::kKeyTile];
  }
  // Value vector of head `head` (head_dim floats) at `pos` in `layer`.
  // The position must still be held (see holds()).
  const float* value(int64_t layer, int64_t head, int64_t pos) const {
    const Layer& l = layers_[layer];
    return l.v.data() + (head * l.slots + slot(layer, pos)) * head_dim_;
  }
  float* value(int64_t layer, int64_t head, int64_t pos) {
    return const_cast<float*>(std::as_const(*this).value(layer, head, pos));
  }
  // Whether `layer` still holds position `pos` (< length()).
  bool holds(int64_t layer, int64_t pos) const {
    return pos >= 0 && pos < length_ && pos >= length_ - layers_[layer].slots;
  }

  // How many of the n positions from `pos` on lie in consecutive slots of
  // `layer` (a ring wraps around): value(layer, h, pos + i) is then
  // value(layer, h, pos) + i * head_dim(), and their keys are slots
  // slot(layer, pos) + i of key_tiles(layer, h).
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
    std::vector<float> k, v;
  };
  const float* key_at(int64_t layer, int64_t head, int64_t pos) const {
    const int64_t s = slot(layer, pos);
    return key_tiles(layer, head) + (s / kernels::kKeyTile) * head_dim_ * kernels::kKeyTile + s % kernels::kKeyTile;
  }
  float* key_at(int64_t layer, int64_t head, int64_t pos) {
    return const_cast<float*>(std::as_const(*this).key_at(layer, head, pos));
  }

  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t heads_ = 0;
  int64_t head_dim_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace gptneo
