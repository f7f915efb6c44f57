// A cache of piece -> tokens for one encode() call. Natural text repeats a
// small set of words, so most pieces are found here instead of re-running
// BPE. The cache lives for one call only, which keeps encode() const and
// thread-safe without locks, and lets keys be views into the caller's text
// instead of copies.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

class WordCache {
 public:
  // Pieces longer than this are rarely repeated; they are not cached.
  static constexpr size_t kMaxPieceBytes = 32;
  // Upper bound on entries, so a huge text of distinct words cannot make the
  // cache grow without end; past it, new pieces are simply not cached.
  static constexpr size_t kMaxEntries = size_t{1} << 20;

  static uint64_t hash(std::string_view piece) {
    // Multiply-xorshift over 8-byte chunks: pieces are short, so a cheap hash
    // beats a strong one.
    uint64_t h = piece.size() * 0x9E3779B97F4A7C15ULL;
    size_t i = 0;
    for (; i + 8 <= piece.size(); i += 8) h = mix(h ^ load(piece.data() + i, 8));
    if (i < piece.size()) h = mix(h ^ load(piece.data() + i, piece.size() - i));
    return h ^ (h >> 32);
  }

  // The cached tokens of `piece`, or an empty span when it is not cached.
  std::span<const TokenId> find(std::string_view piece, uint64_t h) const {
    if (slots_.empty()) return {};
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.length == 0) return {};
      if (slot.hash == h && slot.length == piece.size() &&
          std::memcmp(slot.key, piece.data(), piece.size()) == 0) {
        return {tokens_.data() + slot.first, slot.count};
      }
    }
  }

  // Caches `ids` for `piece`, which must outlive the cache and not be cached yet.
  void insert(std::string_view piece, uint64_t h, std::span<const TokenId> ids) {
    if (piece.empty() || piece.size() > kMaxPieceBytes || size_ >= kMaxEntries) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t i = h & mask_;
    while (slots_[i].length != 0) i = (i + 1) & mask_;
    slots_[i] = Slot{h, piece.data(), static_cast<uint32_t>(piece.size()),
                     static_cast<uint32_t>(tokens_.size()), static_cast<uint32_t>(ids.size())};
    tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    ++size_;
  }

 private:
  struct Slot {
    uint64_t hash;
    const char* key;
    uint32_t length;  // 0 marks an empty slot (empty pieces are never cached)
    uint32_t first;   // tokens_[first, first + count) are the piece's tokens
    uint32_t count;
  };

  static uint64_t load(const char* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    return v;
  }
  static uint64_t mix(uint64_t h) {
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 31);
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t capacity = old.empty() ? 4096 : old.size() * 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& slot : old) {
      if (slot.length == 0) continue;
      size_t i = slot.hash & mask_;
      while (slots_[i].length != 0) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::vector<TokenId> tokens_;
};

}  // namespace gptneo::tok
