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

class Bpe {
 public:
  Bpe() = default;
  // `byte_ids[b]`: the token of the single byte b. `merges`: pair -> rule.
  Bpe(std::array<TokenId, 256> byte_ids, PairMap merges)
      : byte_ids_(byte_ids), merges_(std::move(merges)) {}

  // Appends the tokens of `piece` (raw bytes, non-empty) to `out`.
  void encode_piece(std::string_view piece, std::vector<TokenId>& out) const;

  TokenId byte_id(unsigned char byte) const { return byte_ids_[byte]; }

  // Pieces up to this many bytes are merged in a small array by repeated
  // scans (quadratic, but fastest for the short words text is made of);
  // longer ones use a heap over a linked list, O(n log n).
  static constexpr size_t kSmallPiece = 48;

 private:
  void encode_small(std::string_view piece, std::vector<TokenId>& out) const;
  void encode_large(std::string_view piece, std::vector<TokenId>& out) const;

  std::array<TokenId, 256> byte_ids_{};
  PairMap merges_;
};

}  // namespace gptneo::tok
