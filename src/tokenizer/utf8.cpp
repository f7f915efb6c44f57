// The public UTF-8 helpers of include/gptneo/tokenizer.h.
#include "tokenizer/utf8.h"

#include <cstring>

#include "gptneo/tokenizer.h"

namespace gptneo {

using tok::utf8_sequence_length;
using tok::utf8_valid_second_byte;

namespace {

// Whether 8 bytes at `p` are all ASCII: lets validation of English text run
// a word at a time instead of a byte at a time.
bool eight_ascii_bytes(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return (word & 0x8080808080808080ULL) == 0;
}

}  // namespace

std::optional<size_t> utf8_first_invalid(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n && eight_ascii_bytes(s.data() + i)) {
      i += 8;
      continue;
    }
    const auto lead = static_cast<unsigned char>(s[i]);
    const int len = utf8_sequence_length(lead);
    if (len == 0) return i;
    if (len == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= n || !utf8_valid_second_byte(lead, static_cast<unsigned char>(s[i + 1]))) {
      return i;
    }
    for (int k = 2; k < len; ++k) {
      if (i + k >= n || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::nullopt;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Only the last character can be cut off, and it is at most 4 bytes long:
  // find its lead byte among the last 4 bytes.
  const size_t n = s.size();
  size_t start = n;
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto byte = static_cast<unsigned char>(s[n - back]);
    if ((byte & 0xC0) != 0x80) {
      start = n - back;
      break;
    }
  }
  if (start == n) return n;  // empty, or only continuation bytes: nothing to wait for
  const auto lead = static_cast<unsigned char>(s[start]);
  const size_t have = n - start;
  const int len = utf8_sequence_length(lead);
  if (len <= 1 || have >= static_cast<size_t>(len)) return n;  // complete or never valid
  // Hold the tail back only if the bytes so far can still become a valid
  // character; an already-invalid tail would never complete.
  if (have >= 2 && !utf8_valid_second_byte(lead, static_cast<unsigned char>(s[start + 1]))) {
    return n;
  }
  return start;
}

}  // namespace gptneo
