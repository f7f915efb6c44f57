// Finds special tokens ("<|endoftext|>", the tokenizer.json added_tokens)
// inside text. They are cut out before pre-tokenization, so that their
// characters never reach BPE, matching the tokenizers library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

struct SpecialToken {
  std::string text;
  TokenId id;
};

struct SpecialMatch {
  size_t pos;  // text.size() when there is none
  size_t length;
  TokenId id;
};

class SpecialTokens {
 public:
  SpecialTokens() = default;
  explicit SpecialTokens(std::vector<SpecialToken> tokens);

  // The leftmost occurrence at or after `from`; of several starting there,
  // the longest (the tokenizers library's leftmost-longest rule).
  SpecialMatch find(std::string_view text, size_t from) const;

  bool empty() const { return tokens_.empty(); }
  const std::vector<SpecialToken>& tokens() const { return tokens_; }
  size_t max_length() const { return max_length_; }

 private:
  std::vector<SpecialToken> tokens_;
  // tokens_[group_begin_[b], group_end_[b]) start with byte b, longest first.
  std::array<uint32_t, 256> group_begin_{};
  std::array<uint32_t, 256> group_end_{};
  // When every token starts with the same byte, memchr finds candidates.
  int single_first_byte_ = -1;
  size_t max_length_ = 0;
};

}  // namespace gptneo::tok
