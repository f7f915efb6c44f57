// The GPT-2 pre-tokenizer: splits text into the pieces that the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches, without a regex engine. One left-to-right pass, each byte looked
// at a bounded number of times, so it is linear in the text whatever its
// content (a megabyte of spaces or of one letter included).
#pragma once

#include <cstddef>
#include <string_view>

#include "tokenizer/unicode_tables.h"

namespace gptneo::tok {

class PreTokenizer {
 public:
  // `text` must be valid UTF-8 (Tokenizer::encode checks it first).
  explicit PreTokenizer(std::string_view text) : text_(text) {}

  // Sets `piece` to the next match and returns true, or returns false at the
  // end of the text. Pieces are consecutive and cover the whole text.
  bool next(std::string_view& piece);

 private:
  // End of the piece that starts at `start` (< text size).
  size_t piece_end(size_t start) const;
  // Class of the character at `i`; sets `after` to the index past it.
  CharClass class_at(size_t i, size_t& after) const;
  // End of the run of characters of class `cls` that starts at `i`.
  size_t skip_class(size_t i, CharClass cls) const;
  // Length of the contraction ('s 't 're 've 'm 'll 'd) at `i`, or 0.
  size_t contraction_length(size_t i) const;
  // End of the piece `\s+(?!\S)|\s+` matches at whitespace `i`.
  size_t whitespace_piece_end(size_t i) const;

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace gptneo::tok
