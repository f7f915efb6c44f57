// Open-addressing hash map from a token pair to its merge rank. BPE looks a
// pair up for every adjacent symbol pair it considers, so this is the
// tokenizer's hottest lookup, and it is bound by memory latency: each slot
// is one 64-bit word (both ids and the rank packed together), so GPT-2's
// 50 k merges fit in 1 MB, mostly in L2 cache. Linear probing in a table at
// most half full; one multiply to hash.
#pragma once

#include <cstdint>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

class PairMap {
 public:
  static constexpr int kIdBits = 21;
  static constexpr int kRankBits = 64 - 2 * kIdBits;  // 22
  // The largest id a pair may hold (an all-ones id field marks an empty slot).
  static constexpr TokenId kMaxId = (TokenId{1} << kIdBits) - 2;
  static constexpr uint32_t kMaxRank = (uint32_t{1} << kRankBits) - 2;
  // What rank() returns for a pair that never merges.
  static constexpr uint32_t kNoMerge = UINT32_MAX;

  PairMap() = default;
  explicit PairMap(size_t expected_size) {
    size_t capacity = 16;
    while (capacity < expected_size * 2) capacity *= 2;
    slots_.assign(capacity, kEmpty);
    mask_ = capacity - 1;
  }

  // Inserts or replaces the rank of (left, right); ids <= kMaxId, rank <=
  // kMaxRank. Capacity is fixed by the constructor: inserting more than
  // `expected_size` pairs is a logic error.
  void insert_or_assign(TokenId left, TokenId right, uint32_t rank) {
    const uint64_t key = pack(left, right);
    size_t i = slot_of(key);
    while (slots_[i] != kEmpty && (slots_[i] & kKeyMask) != key) i = (i + 1) & mask_;
    slots_[i] = key | rank;
  }

  // The rank of merging (left, right), or kNoMerge.
  uint32_t rank(TokenId left, TokenId right) const {
    if (slots_.empty()) return kNoMerge;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if ((slot & kKeyMask) == key) return static_cast<uint32_t>(slot & kRankMask);
      if (slot == kEmpty) return kNoMerge;
    }
  }

 private:
  static constexpr uint64_t kRankMask = (uint64_t{1} << kRankBits) - 1;
  static constexpr uint64_t kKeyMask = ~kRankMask;
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // its key part matches no real pair

  static uint64_t pack(TokenId left, TokenId right) {
    return (uint64_t(uint32_t(left)) << (kRankBits + kIdBits)) | (uint64_t(uint32_t(right)) << kRankBits);
  }
  size_t slot_of(uint64_t key) const {
    // Fibonacci hashing: the high bits of the product mix both ids.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 40) & mask_;
  }

  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
};

}  // namespace gptneo::tok
