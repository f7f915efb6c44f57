// gptneo::Tokenizer, the public face of the tokenizer: loading, encoding
// (see encode.cpp), decoding and streaming.
#include "gptneo/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <utility>

#include "gptneo/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/loader.h"
#include "tokenizer/model.h"

namespace gptneo {

namespace {

// encode_parallel gives each thread at least this many bytes.
constexpr size_t kMinParallelChunk = size_t{256} << 10;

void check_utf8(std::string_view text) {
  if (const auto bad = utf8_first_invalid(text)) {
    throw Error(fmt::format("tokenizer: input text is not valid UTF-8: byte 0x{:02X} at offset {}",
                            static_cast<unsigned char>(text[*bad]), *bad));
  }
}

}  // namespace

// The public header's name for the model (private to Tokenizer, so the
// model itself lives in tok::Model where the other files can see it).
struct Tokenizer::Impl : tok::Model {};

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  const tok::TokenizerFiles files = tok::read_tokenizer_files(path);
  auto impl = std::make_unique<Impl>();
  tok::build_model(files, *impl);
  return Tokenizer(std::move(impl));
}

bool Tokenizer::exists_in(const std::filesystem::path& dir) { return tok::tokenizer_files_exist(dir); }

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

// ---- encoding ----------------------------------------------------------------

std::vector<TokenId> Tokenizer::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 16);  // English averages about 3.4 bytes per token
  impl_->encode_valid(text, ids);
  return ids;
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
          parts[i].reserve(chunk.size() / 3 + 16);
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

namespace tok {

void Model::check_id(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= token_bytes.size() || !has_token[id]) {
    throw Error(fmt::format("tokenizer: token id {} is not in the vocabulary (ids 0..{})", id,
                            static_cast<int64_t>(token_bytes.size()) - 1));
  }
}

}  // namespace tok

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
  if (const auto it = by_spelling.find(tok::bytes_to_chars(token_text)); it != by_spelling.end())
    return it->second;
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
