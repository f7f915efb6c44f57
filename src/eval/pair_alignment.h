// Which tokens two sentences of a minimal pair share, for the CrowS-Pairs
// score: the pair differs in a few words (the group named), the rest is
// "unmodified" and is what the score is computed over.
#pragma once

#include <span>
#include <utility>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::eval {

// Marks the tokens of a longest common subsequence of a and b (as the
// CrowS-Pairs code marks difflib's matching blocks). Ties resolve the same
// way on every run.
std::pair<std::vector<bool>, std::vector<bool>> shared_tokens(std::span<const TokenId> a, std::span<const TokenId> b);

}  // namespace gptneo::eval
