#include "eval/pair_alignment.h"

#include <algorithm>
#include <cstdint>

namespace gptneo::eval {

std::pair<std::vector<bool>, std::vector<bool>> shared_tokens(std::span<const TokenId> a, std::span<const TokenId> b) {
  const size_t n = a.size(), m = b.size();
  // lcs[i][j]: the LCS length of a[i..] and b[j..].
  std::vector<int32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> int32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
  std::vector<bool> in_a(n, false), in_b(m, false);
  for (size_t i = 0, j = 0; i < n && j < m;) {
    if (a[i] == b[j] && at(i, j) == at(i + 1, j + 1) + 1) {
      in_a[i++] = true, in_b[j++] = true;
    } else if (at(i + 1, j) >= at(i, j + 1)) {
      ++i;
    } else {
      ++j;
    }
  }
  return {in_a, in_b};
}

}  // namespace gptneo::eval
