#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace gptneo::tok {

namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves;
// the other 68 bytes (controls, space, DEL, NBSP, soft hyphen, ...) are mapped
// in order to U+0100, U+0101, ...
constexpr std::array<char32_t, 256> make_byte_to_char() {
  std::array<char32_t, 256> table{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

constexpr std::array<char32_t, 256> kByteToChar = make_byte_to_char();

// Inverse of kByteToChar; every alphabet character is below U+0144.
constexpr char32_t kAlphabetEnd = 0x144;
constexpr std::array<int, kAlphabetEnd> make_char_to_byte() {
  std::array<int, kAlphabetEnd> table{};
  table.fill(-1);
  for (int b = 0; b < 256; ++b) table[kByteToChar[b]] = b;
  return table;
}

constexpr std::array<int, kAlphabetEnd> kCharToByte = make_char_to_byte();

}  // namespace

char32_t byte_to_char(unsigned char byte) { return kByteToChar[byte]; }

std::string chars_to_bytes(std::string_view text) {
  std::string bytes;
  bytes.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const char32_t cp = utf8_decode_valid(text, i);
    if (cp < kAlphabetEnd && kCharToByte[cp] >= 0) {
      bytes.push_back(static_cast<char>(kCharToByte[cp]));
    } else {
      bytes.append(text.substr(start, i - start));
    }
  }
  return bytes;
}

std::string bytes_to_chars(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (const char c : bytes) utf8_append(text, kByteToChar[static_cast<unsigned char>(c)]);
  return text;
}

}  // namespace gptneo::tok
