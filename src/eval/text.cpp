#include "eval/text.h"

namespace gptneo::eval {

bool is_python_space(char32_t cp) {
  // The code points with the Unicode White_Space property, plus the ASCII
  // separators U+001C..U+001F, which CPython also treats as whitespace.
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

int utf8_decode(std::string_view s, size_t i, char32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  if (i + static_cast<size_t>(len) > s.size()) len = 1;  // cut off: take the byte alone
  cp = len == 1 ? b : b & (0xFF >> (len + 1));
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return len;
}

int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

int64_t python_word_count(std::string_view s) {
  int64_t runs = 0;
  bool in_space = false;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += static_cast<size_t>(utf8_decode(s, i, cp));
    const bool space = is_python_space(cp);
    if (space && !in_space) ++runs;
    in_space = space;
  }
  return runs + 1;
}

std::string_view python_rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;  // the start of the last code point
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    char32_t cp;
    utf8_decode(s, start, cp);
    if (!is_python_space(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

std::string_view python_strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    char32_t cp;
    const int len = utf8_decode(s, begin, cp);
    if (!is_python_space(cp)) break;
    begin += static_cast<size_t>(len);
  }
  return python_rstrip(s.substr(begin));
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = from.empty() ? std::string_view::npos : s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos)).append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

std::string ascii_capitalize(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (i == 0 && c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 'a' + 'A');
    if (i > 0 && c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace gptneo::eval
