// Character classes for the GPT-2 pre-tokenizer regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The tables are generated (tools/gen_unicode_tables.py -> unicode_tables.cpp)
// from the Unicode Character Database, so the scanner needs no regex library.
#pragma once

#include <cstdint>

namespace gptneo::tok {

// The four classes partition all code points, which is what makes a
// hand-written scanner equivalent to the regex.
enum class CharClass : uint8_t {
  Other = 0,   // [^\s\p{L}\p{N}]
  Letter = 1,  // \p{L}: general category L*
  Number = 2,  // \p{N}: general category N*
  Space = 3,   // \s: property White_Space
};

// Two-stage table: kClassStage1[cp >> 8] names a 256-entry block of stage 2.
extern const uint8_t kClassStage1[0x1100];
extern const uint8_t kClassStage2[][256];

inline CharClass char_class(char32_t cp) {
  return static_cast<CharClass>(kClassStage2[kClassStage1[cp >> 8]][cp & 0xFF]);
}

// ASCII is stage-2 block 0's first half; the scanner's fast path reads it
// directly, skipping the stage-1 lookup.
inline CharClass ascii_class(unsigned char byte) { return static_cast<CharClass>(kClassStage2[0][byte]); }

}  // namespace gptneo::tok
