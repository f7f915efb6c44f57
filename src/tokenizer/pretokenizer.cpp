#include "tokenizer/pretokenizer.h"

#include "tokenizer/utf8.h"

namespace gptneo::tok {

CharClass PreTokenizer::class_at(size_t i, size_t& after) const {
  const auto byte = static_cast<unsigned char>(text_[i]);
  if (byte < 0x80) {
    after = i + 1;
    return ascii_class(byte);
  }
  after = i;
  return char_class(utf8_decode_valid(text_, after));
}

size_t PreTokenizer::skip_class(size_t i, CharClass cls) const {
  const size_t n = text_.size();
  while (i < n) {
    // ASCII fast path: one table load per byte, no decoding.
    const auto byte = static_cast<unsigned char>(text_[i]);
    if (byte < 0x80) {
      if (ascii_class(byte) != cls) break;
      ++i;
      continue;
    }
    size_t after = i;
    if (char_class(utf8_decode_valid(text_, after)) != cls) break;
    i = after;
  }
  return i;
}

size_t PreTokenizer::contraction_length(size_t i) const {
  // Only ASCII lower-case contractions: the regex is case-sensitive, so
  // "HE'S" splits as "HE" "'" "S", as the reference does.
  if (i + 1 >= text_.size()) return 0;
  const char c1 = text_[i + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 >= text_.size()) return 0;
  const char c2 = text_[i + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

size_t PreTokenizer::whitespace_piece_end(size_t i) const {
  const size_t end = skip_class(i, CharClass::Space);
  if (end == text_.size()) return end;
  // `\s+(?!\S)` backtracks one character so that the last whitespace
  // character is left to start the next piece (" world" keeps its space);
  // with a single whitespace character that fails and `\s+` takes it.
  const size_t last = utf8_previous(text_, end);
  return last > i ? last : end;
}

bool PreTokenizer::next(std::string_view& piece) {
  const size_t start = pos_;
  if (start >= text_.size()) return false;
  pos_ = piece_end(start);
  piece = text_.substr(start, pos_ - start);
  return true;
}

size_t PreTokenizer::piece_end(size_t start) const {
  // The regex's alternatives in order; the first that matches at `start` wins.
  if (text_[start] == '\'') {
    const size_t len = contraction_length(start);
    if (len != 0) return start + len;
  }
  size_t after = 0;
  const CharClass cls = class_at(start, after);
  if (text_[start] == ' ' && after < text_.size()) {
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a single space joins
    // the run after it unless that run is whitespace.
    size_t run_start = 0;
    const CharClass next_cls = class_at(after, run_start);
    if (next_cls != CharClass::Space) return skip_class(run_start, next_cls);
  }
  return cls == CharClass::Space ? whitespace_piece_end(start) : skip_class(after, cls);
}

}  // namespace gptneo::tok
