// Open-addressing hash map from a token pair to its merge (rank, result).
// BPE looks a pair up for every adjacent symbol pair it considers, so this is
// the tokenizer's hottest lookup: one multiply to hash, linear probing in a
// flat array at most half full, no allocation per lookup.
#pragma once

#include <cstdint>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

struct MergeRule {
  uint32_t rank;     // position in the merges list: lower merges first
  TokenId result;    // the token the pair becomes
};

class PairMap {
 public:
  PairMap() = default;
  explicit PairMap(size_t expected_size) {
    size_t capacity = 16;
    while (capacity < expected_size * 2) capacity *= 2;
    slots_.assign(capacity, Slot{kEmpty, {}});
    mask_ = capacity - 1;
  }

  // Inserts or replaces the rule for (left, right). Capacity is fixed by the
  // constructor; inserting more than `expected_size` pairs is a logic error.
  void insert_or_assign(TokenId left, TokenId right, MergeRule rule) {
    const uint64_t key = pack(left, right);
    size_t i = slot_of(key);
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    slots_[i] = Slot{key, rule};
  }

  const MergeRule* find(TokenId left, TokenId right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.rule;
      if (slot.key == kEmpty) return nullptr;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    MergeRule rule;
  };
  // Token ids are non-negative, so no real pair packs to all ones.
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  static uint64_t pack(TokenId left, TokenId right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t key) const {
    // Fibonacci hashing: the high bits of the product mix both ids.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask_;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace gptneo::tok
