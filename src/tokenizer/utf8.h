// UTF-8 decoding and validation used by the tokenizer. The public helpers
// (utf8_complete_prefix, utf8_first_invalid) are declared in
// include/gptneo/tokenizer.h; these are the internal building blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gptneo::tok {

// Length of the UTF-8 sequence that `lead` starts (1..4), or 0 for a byte
// that cannot start one (a continuation byte, C0, C1, F5..FF).
inline int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// Whether `second` may follow `lead` as the second byte. The second byte
// alone rules out overlong forms (E0, F0), surrogates (ED) and code points
// above U+10FFFF (F4); every later byte only has to be a continuation byte.
inline bool utf8_valid_second_byte(unsigned char lead, unsigned char second) {
  switch (lead) {
    case 0xE0:
      return second >= 0xA0 && second <= 0xBF;
    case 0xED:
      return second >= 0x80 && second <= 0x9F;
    case 0xF0:
      return second >= 0x90 && second <= 0xBF;
    case 0xF4:
      return second >= 0x80 && second <= 0x8F;
    default:
      return (second & 0xC0) == 0x80;
  }
}

// Decodes the character at `s[i]` of text already known to be valid UTF-8,
// advancing `i` past it.
inline char32_t utf8_decode_valid(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    i += 1;
    return b0;
  }
  const auto cont = [&](size_t k) { return static_cast<char32_t>(s[i + k] & 0x3F); };
  char32_t cp;
  if (b0 < 0xE0) {
    cp = (char32_t(b0 & 0x1F) << 6) | cont(1);
    i += 2;
  } else if (b0 < 0xF0) {
    cp = (char32_t(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = (char32_t(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

// Start of the last character of valid UTF-8 text `s` ending at `end` > 0.
inline size_t utf8_previous(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Appends the UTF-8 encoding of `cp` (a valid scalar value) to `out`.
template <typename String>
void utf8_append(String& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace gptneo::tok
