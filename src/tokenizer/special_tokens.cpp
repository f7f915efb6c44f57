#include "tokenizer/special_tokens.h"

#include <algorithm>
#include <cstring>

namespace gptneo::tok {

SpecialTokens::SpecialTokens(std::vector<SpecialToken> tokens) : tokens_(std::move(tokens)) {
  std::erase_if(tokens_, [](const SpecialToken& t) { return t.text.empty(); });
  // Grouped by first byte, longest first within a group: a position is
  // checked only against the tokens that can start there, and the first
  // match is the longest.
  std::stable_sort(tokens_.begin(), tokens_.end(), [](const SpecialToken& a, const SpecialToken& b) {
    const auto a0 = static_cast<unsigned char>(a.text[0]), b0 = static_cast<unsigned char>(b.text[0]);
    return a0 != b0 ? a0 < b0 : a.text.size() > b.text.size();
  });
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto first = static_cast<unsigned char>(tokens_[i].text[0]);
    if (group_end_[first] == 0) group_begin_[first] = static_cast<uint32_t>(i);
    group_end_[first] = static_cast<uint32_t>(i + 1);
    max_length_ = std::max(max_length_, tokens_[i].text.size());
  }
  const auto first_bytes =
      std::count_if(group_end_.begin(), group_end_.end(), [](uint32_t e) { return e != 0; });
  if (first_bytes == 1) single_first_byte_ = static_cast<unsigned char>(tokens_[0].text[0]);
}

SpecialMatch SpecialTokens::find(std::string_view text, size_t from) const {
  const SpecialMatch none{text.size(), 0, 0};
  if (tokens_.empty()) return none;
  size_t pos = from;
  while (pos < text.size()) {
    if (single_first_byte_ >= 0) {
      const void* hit = std::memchr(text.data() + pos, single_first_byte_, text.size() - pos);
      if (hit == nullptr) return none;
      pos = static_cast<const char*>(hit) - text.data();
    }
    const auto first = static_cast<unsigned char>(text[pos]);
    const std::string_view rest = text.substr(pos);
    for (uint32_t i = group_begin_[first]; i < group_end_[first]; ++i) {
      if (rest.starts_with(tokens_[i].text)) return SpecialMatch{pos, tokens_[i].text.size(), tokens_[i].id};
    }
    ++pos;
  }
  return none;
}

}  // namespace gptneo::tok
