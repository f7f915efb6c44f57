// Storage of one sequence's keys and values, layer by layer.
//
// Global layers keep every position [0, capacity). Local layers only ever
// look back window_size positions, so they keep a ring of window_size + slack
// slots: position p lives in slot p % slots. The slack lets a caller step
// back a few positions (speculative decoding rejects drafted tokens) without
// losing keys the next query needs.
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
  int64_t width() const { return width_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }
  size_t bytes() const;

  // Key / value vector (all heads, `width` floats) of `pos` in `layer`. The
  // position must still be held (see holds()).
  const float* key(int64_t layer, int64_t pos) const { return slot(layers_[layer].k, layer, pos); }
  const float* value(int64_t layer, int64_t pos) const { return slot(layers_[layer].v, layer, pos); }
  float* key(int64_t layer, int64_t pos) { return const_cast<float*>(std::as_const(*this).key(layer, pos)); }
  float* value(int64_t layer, int64_t pos) {
    return const_cast<float*>(std::as_const(*this).value(layer, pos));
  }
  // Whether `layer` still holds position `pos` (< length()).
  bool holds(int64_t layer, int64_t pos) const {
    return pos >= 0 && pos < length_ && pos >= length_ - layers_[layer].slots;
  }

  // How many of the n positions from `pos` on lie in consecutive slots of
  // `layer` (a ring wraps around): key(layer, pos + i) is then
  // key(layer, pos) + i * width().
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
  const float* slot(const std::vector<float>& buf, int64_t layer, int64_t pos) const {
    return buf.data() + (pos % layers_[layer].slots) * width_;
  }

  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t width_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace gptneo
