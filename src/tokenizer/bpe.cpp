#include "tokenizer/bpe.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

namespace gptneo::tok {

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
  // symbols[i] and symbols[i + 1] merge with rank[i].
  std::array<TokenId, kSmallPiece> symbols;
  std::array<uint32_t, kSmallPiece> rank;
  size_t n = piece.size();
  for (size_t i = 0; i < n; ++i) symbols[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
  for (size_t i = 0; i + 1 < n; ++i) rank[i] = ranks_.rank(symbols[i], symbols[i + 1]);

  while (n > 1) {
    // std::min_element returns the first minimum: the leftmost pair on a tie.
    const size_t best = std::min_element(rank.begin(), rank.begin() + (n - 1)) - rank.begin();
    if (rank[best] == PairMap::kNoMerge) break;
    symbols[best] = results_[rank[best]];
    // Drop symbol best + 1 and the pair that started at it.
    for (size_t i = best + 1; i + 1 < n; ++i) symbols[i] = symbols[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) rank[i] = rank[i + 1];
    --n;
    if (best > 0) rank[best - 1] = ranks_.rank(symbols[best - 1], symbols[best]);
    if (best + 1 < n) rank[best] = ranks_.rank(symbols[best], symbols[best + 1]);
  }
  out.insert(out.end(), symbols.begin(), symbols.begin() + n);
}

Bpe::Bpe(const std::array<TokenId, 256>& byte_ids, const std::vector<MergeIds>& merges)
    : byte_ids_(byte_ids), ranks_(merges.size()), results_(merges.size()) {
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    ranks_.insert_or_assign(merges[rank].left, merges[rank].right, static_cast<uint32_t>(rank));
    results_[rank] = merges[rank].result;
  }
  // last_made[t]: the highest rank of a merge that makes token t (-1: none).
  const auto in_effect = [&](size_t rank) {
    return ranks_.rank(merges[rank].left, merges[rank].right) == rank;  // not overridden
  };
  std::vector<int64_t> last_made;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    if (!in_effect(rank)) continue;
    const auto t = static_cast<size_t>(merges[rank].result);
    if (t >= last_made.size()) last_made.resize(t + 1, -1);
    last_made[t] = static_cast<int64_t>(rank);
  }
  const auto made_at = [&](TokenId t) {
    return static_cast<size_t>(t) < last_made.size() ? last_made[t] : int64_t{-1};
  };
  ranks_increase_ = true;
  for (size_t rank = 0; rank < merges.size() && ranks_increase_; ++rank) {
    if (!in_effect(rank)) continue;
    const auto r = static_cast<int64_t>(rank);
    ranks_increase_ = made_at(merges[rank].left) < r && made_at(merges[rank].right) < r;
  }
}

// The symbols of a long piece: a doubly linked list over their original
// positions. Merging keeps the left symbol and unlinks the right one.
class SymbolList {
 public:
  SymbolList(std::string_view piece, const std::array<TokenId, 256>& byte_ids) : symbols_(piece.size()) {
    const auto n = static_cast<int32_t>(piece.size());
    for (int32_t i = 0; i < n; ++i) {
      symbols_[i] = Symbol{byte_ids[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
    }
  }
  int32_t size() const { return static_cast<int32_t>(symbols_.size()); }

  // The rank of the pair starting at `pos`, or kNoMerge (also for a symbol
  // already merged away or the last one).
  uint32_t rank_at(int32_t pos, const PairMap& ranks) const {
    const Symbol& s = symbols_[pos];
    return s.id < 0 || s.next < 0 ? PairMap::kNoMerge : ranks.rank(s.id, symbols_[s.next].id);
  }
  // Merges the pair at `pos` into `result`; returns the position before it (or -1).
  int32_t merge(int32_t pos, TokenId result) {
    Symbol& left = symbols_[pos];
    const int32_t gone = left.next;
    left.id = result;
    left.next = symbols_[gone].next;
    if (left.next >= 0) symbols_[left.next].prev = pos;
    symbols_[gone].id = -1;
    return left.prev;
  }
  void append_ids(std::vector<TokenId>& out) const {
    for (int32_t i = 0; i >= 0; i = symbols_[i].next) out.push_back(symbols_[i].id);
  }

 private:
  struct Symbol {
    TokenId id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;  // -1 at either end
  };
  std::vector<Symbol> symbols_;
};

void Bpe::encode_large(std::string_view piece, std::vector<TokenId>& out) const {
  SymbolList symbols(piece, byte_ids_);
  if (ranks_increase_) {
    merge_by_rank_levels(symbols);
  } else {
    merge_with_heap(symbols);
  }
  symbols.append_ids(out);
}

void Bpe::merge_with_heap(SymbolList& symbols) const {
  // A candidate merge is (rank << 32 | position of its left symbol): one
  // 64-bit integer whose order is the merge order (lowest rank, then
  // leftmost). Candidates are not removed when a merge changes their pair;
  // a popped one is used only if the pair now at its position still has its
  // rank, which (ranks being unique per pair) means it is that same pair.
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> heap;
  const auto push_candidate = [&](int32_t pos) {
    const uint32_t rank = symbols.rank_at(pos, ranks_);
    if (rank != PairMap::kNoMerge) heap.push((uint64_t{rank} << 32) | static_cast<uint32_t>(pos));
  };
  for (int32_t i = 0; i + 1 < symbols.size(); ++i) push_candidate(i);
  while (!heap.empty()) {
    const uint64_t top = heap.top();
    heap.pop();
    const auto rank = static_cast<uint32_t>(top >> 32);
    const auto pos = static_cast<int32_t>(top & 0xFFFFFFFFu);
    if (symbols.rank_at(pos, ranks_) != rank) continue;  // stale
    const int32_t prev = symbols.merge(pos, results_[rank]);
    if (prev >= 0) push_candidate(prev);
    push_candidate(pos);
  }
}

void Bpe::merge_by_rank_levels(SymbolList& symbols) const {
  // With ranks_increase_, a merge of rank r only creates pairs of rank > r,
  // so the heap's order (lowest rank, then leftmost) is: every rank in
  // increasing order, each one's positions left to right, and a rank's
  // positions are all known before it is reached. Positions are kept per
  // rank instead of in one big heap: a megabyte of one repeated letter then
  // costs a few sorted vectors instead of millions of cache-missing heap
  // operations. Stale positions are skipped as in merge_with_heap.
  std::unordered_map<uint32_t, std::vector<int32_t>> positions;
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> pending_ranks;
  const auto push_candidate = [&](int32_t pos) {
    const uint32_t rank = symbols.rank_at(pos, ranks_);
    if (rank == PairMap::kNoMerge) return;
    std::vector<int32_t>& at_rank = positions[rank];
    if (at_rank.empty()) pending_ranks.push(rank);
    at_rank.push_back(pos);
  };
  for (int32_t i = 0; i + 1 < symbols.size(); ++i) push_candidate(i);
  while (!pending_ranks.empty()) {
    const uint32_t rank = pending_ranks.top();
    pending_ranks.pop();
    const auto node = positions.extract(rank);
    std::vector<int32_t> level = std::move(node.mapped());
    if (!std::is_sorted(level.begin(), level.end())) std::sort(level.begin(), level.end());
    for (const int32_t pos : level) {
      if (symbols.rank_at(pos, ranks_) != rank) continue;  // stale
      const int32_t prev = symbols.merge(pos, results_[rank]);
      if (prev >= 0) push_candidate(prev);
      push_candidate(pos);
    }
  }
}

}  // namespace gptneo::tok
