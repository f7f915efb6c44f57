// Byte-pair encoding of one pre-tokenized piece: start from one symbol per
// byte and repeatedly merge the adjacent pair with the lowest merge rank
// (the leftmost one on a tie), as the tokenizers library does.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "gptneo/tokenizer.h"
#include "tokenizer/pair_map.h"

namespace gptneo::tok {

class SymbolList;

// One line of the merges list, resolved to ids.
struct MergeIds {
  TokenId left;
  TokenId right;
  TokenId result;
};

class Bpe {
 public:
  Bpe() = default;
  // `byte_ids[b]`: the token of the single byte b. `merges`: in rank order
  // (ids at most PairMap::kMaxId, at most PairMap::kMaxRank of them). A pair
  // listed twice keeps its last rank, as in the tokenizers library.
  Bpe(const std::array<TokenId, 256>& byte_ids, const std::vector<MergeIds>& merges);

  // Appends the tokens of `piece` (raw bytes, non-empty) to `out`.
  void encode_piece(std::string_view piece, std::vector<TokenId>& out) const;

  TokenId byte_id(unsigned char byte) const { return byte_ids_[byte]; }

  // Pieces up to this many bytes are merged in a small array by repeated
  // scans (quadratic, but fastest for the short words text is made of);
  // longer ones use a priority queue over a linked list, O(n log n).
  static constexpr size_t kSmallPiece = 48;

 private:
  void encode_small(std::string_view piece, std::vector<TokenId>& out) const;
  void encode_large(std::string_view piece, std::vector<TokenId>& out) const;
  void merge_with_heap(SymbolList& symbols) const;
  void merge_by_rank_levels(SymbolList& symbols) const;

  std::array<TokenId, 256> byte_ids_{};
  PairMap ranks_;
  std::vector<TokenId> results_;  // rank -> the token that merge makes
  // True when every merge's parts are made only by earlier merges, as in any
  // merges list written by BPE training (GPT-2's included). Then a merge can
  // only create pairs of higher rank, and long pieces can be merged one
  // rank at a time instead of through one big heap.
  bool ranks_increase_ = false;
};

}  // namespace gptneo::tok
