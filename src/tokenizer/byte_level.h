// GPT-2's byte-level alphabet: every byte 0..255 is given a printable Unicode
// character, so that vocabulary entries are readable strings ("Ġthe" is the
// bytes " the"). Vocabulary and merges files are written in this alphabet;
// the tokenizer converts them to raw bytes once, at load time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gptneo::tok {

// The character that stands for `byte` (e.g. 0x20 -> U+0120 'Ġ').
char32_t byte_to_char(unsigned char byte);

// The raw bytes a vocabulary string spells. A character outside the byte
// alphabet stands for its own UTF-8 bytes, as in the tokenizers library's
// ByteLevel decoder. `text` must be valid UTF-8.
std::string chars_to_bytes(std::string_view text);

// The vocabulary spelling of raw bytes (the inverse of chars_to_bytes).
std::string bytes_to_chars(std::string_view bytes);

}  // namespace gptneo::tok
