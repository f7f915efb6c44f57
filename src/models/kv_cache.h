// Storage of one sequence's keys and values, layer by layer.
//
// Global layers keep every position [0, capacity). Local layers only ever
// look back window_size positions, so they keep a ring of window_size + slack
// slots: position p lives in slot p % slots. The slack lets a caller step
// back a few positions (speculative decoding rejects drafted tokens) without
// losing keys the next query needs.
//
// Each head's keys (and values) are kept together, [head][slot][head_dim]:
// attention reads one head's keys for every position, and this way that is
// one sequential stream. Stored position by position (all heads of a
// position together), a head's 256-byte pieces would lie a whole row apart
// (3 KB at gpt-neo-125M), which the hardware prefetchers do not follow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "gptneo/model.h"

namespace gptneo {

class KVCacheImpl {
 public:
  static constexpr int64_t kRingSlack = 64;

  KVCacheImpl(const ModelConfig& config, int64_t capacity);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }
  size_t bytes() const;

  // Key / value vector of head `head` (head_dim floats) at `pos` in `layer`.
  // The position must still be held (see holds()).
  const float* key(int64_t layer, int64_t head, int64_t pos) const { return slot(layers_[layer].k, layer, head, pos); }
  const float* value(int64_t layer, int64_t head, int64_t pos) const {
    return slot(layers_[layer].v, layer, head, pos);
  }
  float* key(int64_t layer, int64_t head, int64_t pos) {
    return const_cast<float*>(std::as_const(*this).key(layer, head, pos));
  }
  float* value(int64_t layer, int64_t head, int64_t pos) {
    return const_cast<float*>(std::as_const(*this).value(layer, head, pos));
  }
  // Whether `layer` still holds position `pos` (< length()).
  bool holds(int64_t layer, int64_t pos) const {
    return pos >= 0 && pos < length_ && pos >= length_ - layers_[layer].slots;
  }

  // How many of the n positions from `pos` on lie in consecutive slots of
  // `layer` (a ring wraps around): key(layer, h, pos + i) is then
  // key(layer, h, pos) + i * head_dim().
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
    int64_t window = 0;  // 0 for global layers
    std::vector<float> k, v;
  };
  const float* slot(const std::vector<float>& buf, int64_t layer, int64_t head, int64_t pos) const {
    const int64_t slots = layers_[layer].slots;
    return buf.data() + (head * slots + pos % slots) * head_dim_;
  }

  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t heads_ = 0;
  int64_t head_dim_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace gptneo
