// GPT-2 byte-level BPE tokenizer (the tokenizer of GPT-Neo and GPT-J).
//
// Reads either the tokenizers library's `tokenizer.json` or the older
// `vocab.json` + `merges.txt` pair. Encoding is exact: ids equal Hugging Face
// tokenizers (and tiktoken's r50k_base) for every valid UTF-8 text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gptneo {

using TokenId = int32_t;

class Tokenizer {
 public:
  // Loads from a model folder (tokenizer.json, else vocab.json + merges.txt),
  // or from a path naming tokenizer.json / vocab.json directly (merges.txt is
  // then looked up beside vocab.json). Throws gptneo::Error naming the missing
  // or malformed file.
  static Tokenizer load(const std::filesystem::path& path);
  // True when `dir` holds tokenizer files that load() would find.
  static bool exists_in(const std::filesystem::path& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text -> ids. Special tokens (e.g. "<|endoftext|>") inside the text become
  // their ids. Throws gptneo::Error when `text` is not valid UTF-8 (the message
  // gives the byte offset).
  std::vector<TokenId> encode(std::string_view text) const;
  // The same ids as encode(text), computed by up to `threads` threads on
  // chunks cut where the pre-tokenizer is known to split (worth it for texts
  // of megabytes; shorter ones are encoded on the calling thread).
  std::vector<TokenId> encode_parallel(std::string_view text, int threads) const;

  // Ids -> bytes. The result is the exact concatenation of the tokens' bytes;
  // it may end inside a UTF-8 character (use StreamDecoder for streaming).
  // Throws gptneo::Error for an id outside the vocabulary.
  std::string decode(std::span<const TokenId> ids) const;

  // The raw bytes of one token.
  const std::string& token_bytes(TokenId id) const;

  // Number of ids the tokenizer can decode (50257 for GPT-2).
  int32_t vocab_size() const;
  // Id of "<|endoftext|>" (50256 for GPT-2).
  TokenId eos_id() const;
  // Id of a token given by its text (special tokens included), if any.
  std::optional<TokenId> token_id(std::string_view token_text) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text pieces that never split a UTF-8
// character: bytes of an incomplete character are held back until the token
// that completes it arrives. flush() returns whatever is left (an incomplete
// tail is returned as-is, never dropped).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tok_(&tokenizer) {}
  std::string push(TokenId id);
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

// Length of the longest prefix of `s` that is complete, valid UTF-8 up to
// the point where a character is cut off at the end. Bytes after it are an
// incomplete (but so far valid) character start.
size_t utf8_complete_prefix(std::string_view s);
// Offset of the first invalid UTF-8 byte in `s`, or std::nullopt if valid.
std::optional<size_t> utf8_first_invalid(std::string_view s);

}  // namespace gptneo
