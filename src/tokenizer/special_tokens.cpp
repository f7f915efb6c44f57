#include "tokenizer/special_tokens.h"

#include <algorithm>
#include <cstring>

namespace gptneo::tok {

SpecialTokens::SpecialTokens(std::vector<SpecialToken> tokens) : tokens_(std::move(tokens)) {
  std::erase_if(tokens_, [](const SpecialToken& t) { return t.text.empty(); });
  std::stable_sort(tokens_.begin(), tokens_.end(), [](const SpecialToken& a, const SpecialToken& b) {
    return a.text.size() > b.text.size();
  });
  for (const SpecialToken& token : tokens_) {
    const auto first = static_cast<unsigned char>(token.text[0]);
    is_first_byte_[first] = true;
    max_length_ = std::max(max_length_, token.text.size());
  }
  const auto first_bytes = std::count(is_first_byte_.begin(), is_first_byte_.end(), true);
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
    } else if (!is_first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const std::string_view rest = text.substr(pos);
    for (const SpecialToken& token : tokens_) {
      if (rest.starts_with(token.text)) return SpecialMatch{pos, token.text.size(), token.id};
    }
    ++pos;
  }
  return none;
}

}  // namespace gptneo::tok
