// gptneo::Tokenizer: builds the lookup structures from the tokenizer files
// and runs encode (special tokens -> pre-tokenizer -> byte-level BPE) and
// decode (ids -> raw bytes).
#include "gptneo/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <exception>
#include <thread>
#include <unordered_map>

#include "gptneo/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/loader.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/utf8.h"
#include "tokenizer/word_cache.h"

namespace gptneo {

using namespace tok;

namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";
// Ids index a dense table, and the merge table packs two ids into 42 bits:
// 2 M ids is far beyond any BPE vocabulary (GPT-2 has 50 257).
constexpr TokenId kMaxTokenId = PairMap::kMaxId;
// Below this many bytes a text is unlikely to repeat words enough to pay for
// building a word cache.
constexpr size_t kWordCacheMinText = 2048;
// encode_parallel gives each thread at least this many bytes.
constexpr size_t kMinParallelChunk = size_t{256} << 10;

void check_utf8(std::string_view text) {
  if (const auto bad = utf8_first_invalid(text)) {
    throw Error(fmt::format("tokenizer: input text is not valid UTF-8: byte 0x{:02X} at offset {}",
                            static_cast<unsigned char>(text[*bad]), *bad));
  }
}

// Everything a loaded tokenizer holds. Tokenizer::Impl is this under the
// public header's name (which is private to Tokenizer, hence the split).
struct Model {
  std::vector<std::string> token_bytes;  // id -> raw bytes
  std::vector<bool> has_token;           // false for ids no token uses
  std::unordered_map<std::string, TokenId> by_spelling;  // "Ġthe" -> id
  Bpe bpe;
  // BPE results for the bytes of every vocabulary token, computed at load:
  // the frequent words of any text are tokens, so most pieces are found
  // here, even by short encode() calls that build no cache of their own.
  // Read-only after load, so shared by all threads.
  WordCache vocab_words;
  SpecialTokens specials;
  TokenId eos = -1;

  void encode_valid(std::string_view text, std::vector<TokenId>& out) const;
  // Encodes text free of special tokens; `readable_end` is the end of the
  // whole buffer `text` lies in (the word cache may read up to there).
  void encode_ordinary(std::string_view text, const char* readable_end, WordCache* cache,
                       std::vector<TokenId>& out) const;
  size_t parallel_boundary(std::string_view text, size_t target) const;
  void check_id(TokenId id) const;
};

}  // namespace

struct Tokenizer::Impl : Model {};

// ---- building ----------------------------------------------------------------

namespace {

void add_token(Model& impl, TokenId id, std::string bytes) {
  if (static_cast<size_t>(id) >= impl.token_bytes.size()) {
    impl.token_bytes.resize(static_cast<size_t>(id) + 1);
    impl.has_token.resize(static_cast<size_t>(id) + 1);
  }
  impl.token_bytes[id] = std::move(bytes);
  impl.has_token[id] = true;
}

void build_vocab(const TokenizerFiles& files, Model& impl) {
  impl.by_spelling.reserve(files.vocab.size() + files.added_tokens.size());
  for (const auto& [spelling, id] : files.vocab) {
    if (id > kMaxTokenId) {
      throw Error(fmt::format("tokenizer file {}: token \"{}\" has id {}, above the supported maximum {}",
                              files.vocab_file.string(), spelling, id, kMaxTokenId));
    }
    if (static_cast<size_t>(id) < impl.has_token.size() && impl.has_token[id]) {
      throw Error(fmt::format("tokenizer file {}: id {} is given to two tokens (\"{}\" and another)",
                              files.vocab_file.string(), id, spelling));
    }
    impl.by_spelling.emplace(spelling, id);
    add_token(impl, id, chars_to_bytes(spelling));
  }
  // Added tokens are raw text, not byte-level spellings; one may also be a
  // vocabulary entry (GPT-2's <|endoftext|> is), which it then replaces.
  for (const AddedToken& added : files.added_tokens) {
    if (added.id > kMaxTokenId) {
      throw Error(fmt::format("tokenizer file {}: added token \"{}\" has id {}, above the supported maximum {}",
                              files.vocab_file.string(), added.content, added.id, kMaxTokenId));
    }
    impl.by_spelling.insert_or_assign(added.content, added.id);
    add_token(impl, added.id, added.content);
  }
}

TokenId lookup_merge_token(const TokenizerFiles& files, const Model& impl, const Merge& merge,
                           size_t rank, const std::string& spelling, std::string_view role) {
  const auto it = impl.by_spelling.find(spelling);
  if (it != impl.by_spelling.end()) return it->second;
  const std::string where =
      merge.line != 0 ? fmt::format("line {}", merge.line) : fmt::format("model.merges[{}]", rank);
  throw Error(fmt::format("tokenizer file {}: {}: merge \"{} {}\" names {} \"{}\", which is not in the "
                          "vocabulary ({})",
                          files.merges_file.string(), where, merge.left, merge.right, role, spelling,
                          files.vocab_file.string()));
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
    merges.push_back(MergeIds{
        lookup_merge_token(files, model, merge, rank, merge.left, "the token"),
        lookup_merge_token(files, model, merge, rank, merge.right, "the token"),
        lookup_merge_token(files, model, merge, rank, merge.left + merge.right, "its result")});
  }
  return merges;
}

std::array<TokenId, 256> build_byte_ids(const TokenizerFiles& files, const Model& impl) {
  std::array<TokenId, 256> ids{};
  for (int b = 0; b < 256; ++b) {
    const std::string spelling = bytes_to_chars(std::string(1, static_cast<char>(b)));
    const auto it = impl.by_spelling.find(spelling);
    if (it == impl.by_spelling.end()) {
      throw Error(fmt::format("tokenizer file {}: no token for byte 0x{:02X} (\"{}\"); a byte-level BPE "
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

TokenId find_eos(const TokenizerFiles& files, const Model& impl) {
  if (const auto it = impl.by_spelling.find(std::string(kEndOfText)); it != impl.by_spelling.end()) {
    return it->second;
  }
  for (const AddedToken& added : files.added_tokens) {
    if (added.special) return added.id;
  }
  return -1;
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  const TokenizerFiles files = read_tokenizer_files(path);
  auto impl = std::make_unique<Impl>();
  build_vocab(files, *impl);
  impl->bpe = Bpe(build_byte_ids(files, *impl), build_merges(files, *impl));
  impl->specials = build_specials(files);
  impl->vocab_words = memoize_vocab_words(*impl);
  impl->eos = find_eos(files, *impl);
  return Tokenizer(std::move(impl));
}

bool Tokenizer::exists_in(const std::filesystem::path& dir) { return tokenizer_files_exist(dir); }

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

// ---- encoding ----------------------------------------------------------------

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

std::vector<TokenId> Tokenizer::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 4 + 16);  // English averages about 4.5 bytes per token
  impl_->encode_valid(text, ids);
  return ids;
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

std::vector<TokenId> Tokenizer::encode_parallel(std::string_view text, int threads) const {
  check_utf8(text);
  const size_t chunks = std::min<size_t>(std::max(threads, 1), text.size() / kMinParallelChunk + 1);
  if (chunks <= 1) return encode(text);

  std::vector<size_t> bounds{0};
  for (size_t i = 1; i < chunks; ++i) {
    bounds.push_back(std::max(bounds.back(), impl_->parallel_boundary(text, text.size() * i / chunks)));
  }
  bounds.push_back(text.size());

  std::vector<std::vector<TokenId>> parts(chunks);
  std::vector<std::exception_ptr> errors(chunks);
  {
    std::vector<std::jthread> workers;
    for (size_t i = 0; i < chunks; ++i) {
      workers.emplace_back([&, i] {
        try {
          const std::string_view chunk = text.substr(bounds[i], bounds[i + 1] - bounds[i]);
          parts[i].reserve(chunk.size() / 4 + 16);
          impl_->encode_valid(chunk, parts[i]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      });
    }
  }
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  std::vector<TokenId> ids;
  size_t total = 0;
  for (const auto& part : parts) total += part.size();
  ids.reserve(total);
  for (const auto& part : parts) ids.insert(ids.end(), part.begin(), part.end());
  return ids;
}

// ---- decoding ----------------------------------------------------------------

void Model::check_id(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= token_bytes.size() || !has_token[id]) {
    throw Error(fmt::format("tokenizer: token id {} is not in the vocabulary (ids 0..{})", id,
                            static_cast<int64_t>(token_bytes.size()) - 1));
  }
}

const std::string& Tokenizer::token_bytes(TokenId id) const {
  impl_->check_id(id);
  return impl_->token_bytes[id];
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  size_t total = 0;
  for (const TokenId id : ids) total += token_bytes(id).size();
  std::string text;
  text.reserve(total);
  for (const TokenId id : ids) text += impl_->token_bytes[id];
  return text;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_bytes.size()); }

TokenId Tokenizer::eos_id() const { return impl_->eos; }

std::optional<TokenId> Tokenizer::token_id(std::string_view token_text) const {
  // The vocabulary's own spelling first ("Ġthe", as in the files), then the
  // raw bytes (" the", spelled into the byte-level alphabet), so callers
  // holding either find the token.
  const auto& by_spelling = impl_->by_spelling;
  if (const auto it = by_spelling.find(std::string(token_text)); it != by_spelling.end()) return it->second;
  if (const auto it = by_spelling.find(bytes_to_chars(token_text)); it != by_spelling.end()) return it->second;
  return std::nullopt;
}

// ---- streaming -----------------------------------------------------------------

std::string StreamDecoder::push(TokenId id) {
  pending_ += tok_->token_bytes(id);
  // Hold back only the bytes of a character still being completed.
  const size_t ready = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() { return std::exchange(pending_, std::string()); }

}  // namespace gptneo
