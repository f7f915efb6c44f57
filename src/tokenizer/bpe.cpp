#include "tokenizer/bpe.h"

#include <algorithm>
#include <limits>
#include <queue>

namespace gptneo::tok {

namespace {

constexpr uint32_t kNoMerge = std::numeric_limits<uint32_t>::max();

}  // namespace

void Bpe::encode_piece(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
  } else if (piece.size() <= kSmallPiece) {
    encode_small(piece, out);
  } else {
    encode_large(piece, out);
  }
}

void Bpe::encode_small(std::string_view piece, std::vector<TokenId>& out) const {
  // symbols[i] and symbols[i + 1] merge with rank[i] into result[i].
  std::array<TokenId, kSmallPiece> symbols;
  std::array<uint32_t, kSmallPiece> rank;
  std::array<TokenId, kSmallPiece> result;
  size_t n = piece.size();
  for (size_t i = 0; i < n; ++i) symbols[i] = byte_ids_[static_cast<unsigned char>(piece[i])];

  const auto look_up = [&](size_t i) {
    const MergeRule* rule = merges_.find(symbols[i], symbols[i + 1]);
    rank[i] = rule ? rule->rank : kNoMerge;
    result[i] = rule ? rule->result : 0;
  };
  for (size_t i = 0; i + 1 < n; ++i) look_up(i);

  while (n > 1) {
    // std::min_element returns the first minimum: the leftmost pair on a tie.
    const size_t best = std::min_element(rank.begin(), rank.begin() + (n - 1)) - rank.begin();
    if (rank[best] == kNoMerge) break;
    symbols[best] = result[best];
    // Drop symbol best + 1 and the pair that started at it.
    std::copy(symbols.begin() + best + 2, symbols.begin() + n, symbols.begin() + best + 1);
    if (best + 2 < n - 1) {  // there are pairs after the dropped one
      std::copy(rank.begin() + best + 2, rank.begin() + (n - 1), rank.begin() + best + 1);
      std::copy(result.begin() + best + 2, result.begin() + (n - 1), result.begin() + best + 1);
    }
    --n;
    if (best > 0) look_up(best - 1);
    if (best + 1 < n) look_up(best);
  }
  out.insert(out.end(), symbols.begin(), symbols.begin() + n);
}

void Bpe::encode_large(std::string_view piece, std::vector<TokenId>& out) const {
  // Symbols form a doubly linked list over their original positions; merging
  // keeps the left symbol and unlinks the right one.
  struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;  // -1 at either end
  };
  // A possible merge of the symbol at `pos` with its right neighbour, valid
  // only while both still hold the ids it was made for: rather than remove
  // stale candidates from the heap, pop and skip them.
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    TokenId left;
    TokenId right;
    TokenId result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };

  const auto n = static_cast<int32_t>(piece.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_ids_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }

  std::vector<Candidate> initial;
  initial.reserve(static_cast<size_t>(n));
  const auto candidate_at = [&](int32_t pos, auto&& push) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const MergeRule* rule = merges_.find(symbols[pos].id, symbols[next].id)) {
      push(Candidate{rule->rank, pos, symbols[pos].id, symbols[next].id, rule->result});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) candidate_at(i, [&](const Candidate& c) { initial.push_back(c); });
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                              std::move(initial));
  const auto push = [&](const Candidate& c) { heap.push(c); };

  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (left.id != top.left || left.next < 0 || symbols[left.next].id != top.right) continue;
    // Merge: the left symbol takes the result, the right one leaves the list.
    const int32_t gone = left.next;
    left.id = top.result;
    left.next = symbols[gone].next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    symbols[gone].id = -1;
    if (left.prev >= 0) candidate_at(left.prev, push);
    candidate_at(top.pos, push);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace gptneo::tok
