// Building a Model from parsed tokenizer files: the vocabulary (spellings
// turned into raw bytes), the byte tokens, the merges (spellings turned into
// ids), the special tokens and the memo of vocabulary words.
#include <fmt/format.h>

#include <array>

#include "gptneo/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/model.h"

namespace gptneo::tok {

namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";
// Ids index a dense table, and the merge table packs two ids into 42 bits:
// 2 M ids is far beyond any BPE vocabulary (GPT-2 has 50 257).
constexpr TokenId kMaxTokenId = PairMap::kMaxId;

void add_token(Model& model, TokenId id, std::string bytes) {
  if (static_cast<size_t>(id) >= model.token_bytes.size()) {
    model.token_bytes.resize(static_cast<size_t>(id) + 1);
    model.has_token.resize(static_cast<size_t>(id) + 1);
  }
  model.token_bytes[id] = std::move(bytes);
  model.has_token[id] = true;
}

void build_vocab(const TokenizerFiles& files, Model& model) {
  model.by_spelling.reserve(files.vocab.size() + files.added_tokens.size());
  for (const auto& [spelling, id] : files.vocab) {
    if (id > kMaxTokenId) {
      throw Error(fmt::format("tokenizer file {}: token \"{}\" has id {}, above the supported maximum {}",
                              files.vocab_file.string(), spelling, id, kMaxTokenId));
    }
    if (static_cast<size_t>(id) < model.has_token.size() && model.has_token[id]) {
      throw Error(fmt::format("tokenizer file {}: id {} is given to two tokens, \"{}\" and \"{}\"",
                              files.vocab_file.string(), id, bytes_to_chars(model.token_bytes[id]),
                              spelling));
    }
    model.by_spelling.emplace(spelling, id);
    add_token(model, id, chars_to_bytes(spelling));
  }
  // Added tokens are raw text, not byte-level spellings; one may also be a
  // vocabulary entry (GPT-2's <|endoftext|> is), which it then replaces.
  for (const AddedToken& added : files.added_tokens) {
    if (added.id > kMaxTokenId) {
      throw Error(
          fmt::format("tokenizer file {}: added token \"{}\" has id {}, above the supported maximum {}",
                      files.vocab_file.string(), added.content, added.id, kMaxTokenId));
    }
    model.by_spelling.insert_or_assign(added.content, added.id);
    add_token(model, added.id, added.content);
  }
}

TokenId lookup_merge_token(const TokenizerFiles& files, const Model& model, const Merge& merge, size_t rank,
                           const std::string& spelling, std::string_view role) {
  const auto it = model.by_spelling.find(spelling);
  if (it != model.by_spelling.end()) return it->second;
  const std::string where =
      merge.line != 0 ? fmt::format("line {}", merge.line) : fmt::format("model.merges[{}]", rank);
  throw Error(fmt::format(
      "tokenizer file {}: {}: merge \"{} {}\" names {} \"{}\", which is not in the "
      "vocabulary ({})",
      files.merges_file.string(), where, merge.left, merge.right, role, spelling, files.vocab_file.string()));
}

std::vector<MergeIds> build_merges(const TokenizerFiles& files, const Model& model) {
  if (files.merges.size() > PairMap::kMaxRank) {
    throw Error(fmt::format("tokenizer file {}: {} merges is more than the {} supported",
                            files.merges_file.string(), files.merges.size(), PairMap::kMaxRank));
  }
  std::vector<MergeIds> merges;
  merges.reserve(files.merges.size());
  for (size_t rank = 0; rank < files.merges.size(); ++rank) {
    const Merge& merge = files.merges[rank];
    merges.push_back(
        MergeIds{lookup_merge_token(files, model, merge, rank, merge.left, "the token"),
                 lookup_merge_token(files, model, merge, rank, merge.right, "the token"),
                 lookup_merge_token(files, model, merge, rank, merge.left + merge.right, "its result")});
  }
  return merges;
}

std::array<TokenId, 256> build_byte_ids(const TokenizerFiles& files, const Model& model) {
  std::array<TokenId, 256> ids{};
  for (int b = 0; b < 256; ++b) {
    const std::string spelling = bytes_to_chars(std::string(1, static_cast<char>(b)));
    const auto it = model.by_spelling.find(spelling);
    if (it == model.by_spelling.end()) {
      throw Error(
          fmt::format("tokenizer file {}: no token for byte 0x{:02X} (\"{}\"); a byte-level BPE "
                      "vocabulary needs all 256",
                      files.vocab_file.string(), b, spelling));
    }
    ids[b] = it->second;
  }
  return ids;
}

SpecialTokens build_specials(const TokenizerFiles& files) {
  // Every added token is cut out of input text, special or not, as the
  // tokenizers library does (GPT-2's files only have <|endoftext|>).
  // lstrip / rstrip / single_word options are not supported; GPT-2, GPT-Neo
  // and GPT-J files leave them off.
  std::vector<SpecialToken> tokens;
  for (const AddedToken& added : files.added_tokens) tokens.push_back({added.content, added.id});
  return SpecialTokens(std::move(tokens));
}

WordCache memoize_vocab_words(const Model& model) {
  WordCache memo;
  std::vector<TokenId> ids;
  for (const std::string& bytes : model.token_bytes) {
    if (bytes.size() < 2 || bytes.size() > WordCache::kMaxPieceBytes) continue;
    ids.clear();
    model.bpe.encode_piece(bytes, ids);
    const WordCache::Key key = WordCache::make_key(bytes, bytes.data() + bytes.size());
    const uint64_t hash = WordCache::hash(key);
    if (!memo.contains(key, hash)) memo.insert(key, hash, ids.data(), ids.size());
  }
  return memo;
}

TokenId find_eos(const TokenizerFiles& files, const Model& model) {
  if (const auto it = model.by_spelling.find(std::string(kEndOfText)); it != model.by_spelling.end()) {
    return it->second;
  }
  for (const AddedToken& added : files.added_tokens) {
    if (added.special) return added.id;
  }
  return -1;
}

}  // namespace

void build_model(const TokenizerFiles& files, Model& model) {
  build_vocab(files, model);
  model.bpe = Bpe(build_byte_ids(files, model), build_merges(files, model));
  model.specials = build_specials(files);
  model.vocab_words = memoize_vocab_words(model);
  model.eos = find_eos(files, model);
}

}  // namespace gptneo::tok
