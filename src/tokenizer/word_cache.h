// A memo of piece -> tokens (the BPE result of a pre-tokenized piece).
// Natural text repeats a small set of words (20 MB of English has about 5 M
// pieces but only 215 k distinct ones), so most pieces are found here instead
// of re-running BPE. Two are used: one built at load time from the
// vocabulary (read-only, shared by all threads) and one per encode() call of
// a long text, which keeps encode() const and thread-safe without locks.
//
// Keys are stored inline in the slot (up to 24 bytes, zero-padded) rather
// than as pointers into the text: comparing against an earlier occurrence of
// the word would cost a cache miss somewhere in a text of megabytes.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

class WordCache {
 public:
  // Longer pieces are rare (under 0.01% of English pieces); they are not cached.
  static constexpr size_t kMaxPieceBytes = 24;
  // Upper bound on entries, so a huge text of distinct words cannot make the
  // cache grow without end; past it, new pieces are simply not cached.
  static constexpr size_t kMaxEntries = size_t{1} << 19;  // a table of at most 32 MB

  // A piece of at most kMaxPieceBytes bytes, zero-padded to three words.
  struct Key {
    uint64_t words[3];
    uint32_t length;
  };

  // `piece` (at most kMaxPieceBytes) must lie in a buffer that ends at
  // `readable_end`. When 24 bytes are readable from the piece's start, three
  // whole words are loaded and the bytes past the piece masked off, which is
  // much cheaper than a variable-length memcpy.
  static Key make_key(std::string_view piece, const char* readable_end) {
    Key key{{0, 0, 0}, static_cast<uint32_t>(piece.size())};
    if constexpr (std::endian::native == std::endian::little) {
      if (readable_end - piece.data() >= static_cast<ptrdiff_t>(sizeof key.words)) {
        std::memcpy(key.words, piece.data(), sizeof key.words);
        for (size_t i = 0; i < 3; ++i) {
          const size_t bytes_in_word = std::min<size_t>(piece.size() - std::min(piece.size(), 8 * i), 8);
          key.words[i] &= bytes_in_word == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes_in_word)) - 1;
        }
        return key;
      }
    }
    std::memcpy(key.words, piece.data(), piece.size());
    return key;
  }

  static uint64_t hash(const Key& key) {
    uint64_t h = key.words[0] * 0x9E3779B97F4A7C15ULL;
    h ^= key.words[1] * 0xC2B2AE3D27D4EB4FULL;
    h ^= key.words[2] * 0x165667B19E3779F9ULL;
    h ^= key.length;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 32);
  }

  // Appends the cached tokens of the piece to `out` and returns true, or
  // returns false when the piece is not cached.
  bool append_cached(const Key& key, uint64_t h, std::vector<TokenId>& out) const {
    const Slot* slot = find(key, h);
    if (slot == nullptr) return false;
    if (slot->count == 1) {
      out.push_back(static_cast<TokenId>(slot->value));
    } else {
      const TokenId* first = tokens_.data() + slot->value;
      out.insert(out.end(), first, first + slot->count);
    }
    return true;
  }

  bool contains(const Key& key, uint64_t h) const { return find(key, h) != nullptr; }

  // Caches `ids` (1 to kMaxPieceBytes tokens) for a piece not cached yet.
  void insert(const Key& key, uint64_t h, const TokenId* ids, size_t count) {
    if (key.length == 0 || key.length > kMaxPieceBytes || size_ >= kMaxEntries) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t i = h & mask_;
    while (slots_[i].length != 0) i = (i + 1) & mask_;
    Slot& slot = slots_[i];
    std::memcpy(slot.words, key.words, sizeof slot.words);
    slot.length = static_cast<uint8_t>(key.length);
    slot.count = static_cast<uint8_t>(count);
    if (count == 1) {
      slot.value = static_cast<uint32_t>(ids[0]);
    } else {
      slot.value = static_cast<uint32_t>(tokens_.size());
      tokens_.insert(tokens_.end(), ids, ids + count);
    }
    ++size_;
  }

 private:
  // 32 bytes, two per cache line.
  struct Slot {
    uint64_t words[3];
    uint8_t length;  // 0 marks an empty slot (empty pieces are never cached)
    uint8_t count;   // number of tokens
    uint32_t value;  // the token when count == 1, else its tokens' index in tokens_
  };

  const Slot* find(const Key& key, uint64_t h) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.length == 0) return nullptr;
      if (slot.length == key.length && slot.words[0] == key.words[0] && slot.words[1] == key.words[1] &&
          slot.words[2] == key.words[2]) {
        return &slot;
      }
    }
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t capacity = old.empty() ? 4096 : old.size() * 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& slot : old) {
      if (slot.length == 0) continue;
      Key key{{slot.words[0], slot.words[1], slot.words[2]}, slot.length};
      size_t i = hash(key) & mask_;
      while (slots_[i].length != 0) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::vector<TokenId> tokens_;  // tokens of pieces that have several
};

}  // namespace gptneo::tok
