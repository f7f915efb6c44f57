// Encoding: special tokens are cut out first, the text between them is split
// by the pre-tokenizer, and each piece goes through byte-level BPE, with
// memos in front of BPE because natural text repeats its words.
#include <algorithm>

#include "tokenizer/model.h"
#include "tokenizer/pretokenizer.h"

namespace gptneo::tok {

namespace {

// Below this many bytes a text is unlikely to repeat words enough to pay for
// building a word cache.
constexpr size_t kWordCacheMinText = 2048;

}  // namespace

void Model::encode_ordinary(std::string_view text, const char* readable_end, WordCache* cache,
                            std::vector<TokenId>& out) const {
  PreTokenizer pretokenizer(text);
  std::string_view piece;
  while (pretokenizer.next(piece)) {
    if (piece.size() == 1) {
      out.push_back(bpe.byte_id(static_cast<unsigned char>(piece[0])));
      continue;
    }
    if (piece.size() > WordCache::kMaxPieceBytes) {
      bpe.encode_piece(piece, out);
      continue;
    }
    const WordCache::Key key = WordCache::make_key(piece, readable_end);
    const uint64_t hash = WordCache::hash(key);
    if (cache != nullptr && cache->append_cached(key, hash, out)) continue;
    const size_t first = out.size();
    if (!vocab_words.append_cached(key, hash, out)) bpe.encode_piece(piece, out);
    if (cache != nullptr) cache->insert(key, hash, out.data() + first, out.size() - first);
  }
}

void Model::encode_valid(std::string_view text, std::vector<TokenId>& out) const {
  WordCache cache;  // allocates nothing until its first insert
  WordCache* use_cache = text.size() >= kWordCacheMinText ? &cache : nullptr;
  size_t pos = 0;
  while (pos < text.size()) {
    const SpecialMatch special = specials.find(text, pos);
    encode_ordinary(text.substr(pos, special.pos - pos), text.data() + text.size(), use_cache, out);
    if (special.length == 0) break;
    out.push_back(special.id);
    pos = special.pos + special.length;
  }
}

size_t Model::parallel_boundary(std::string_view text, size_t target) const {
  // A chunk may end at p when text[p - 1] is an ASCII letter and text[p] is
  // ASCII whitespace: the piece holding the letter (a letter run or a
  // contraction) must end at p, so the pre-tokenizer splits there whether it
  // started at the text's start or at p. p must also not fall inside any
  // possible special-token occurrence.
  const auto is_letter = [](char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; };
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  const auto inside_special = [&](size_t p) {
    const size_t from = p >= specials.max_length() ? p - specials.max_length() + 1 : 0;
    for (size_t s = from; s < p; ++s) {
      for (const SpecialToken& token : specials.tokens()) {
        if (s + token.text.size() > p && text.substr(s).starts_with(token.text)) return true;
      }
    }
    return false;
  };
  for (size_t p = std::max<size_t>(target, 1); p < text.size(); ++p) {
    if (is_space(text[p]) && is_letter(text[p - 1]) && !inside_special(p)) return p;
  }
  return text.size();
}

}  // namespace gptneo::tok
