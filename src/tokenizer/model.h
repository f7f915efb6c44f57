// The data of a loaded tokenizer and the encoding steps that use it.
// Tokenizer (tokenizer.cpp) is the public face; build_model
// (model_builder.cpp) fills a Model from the parsed files; encode.cpp runs
// special tokens -> pre-tokenizer -> byte-level BPE.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gptneo/tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/loader.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/word_cache.h"

namespace gptneo::tok {

struct Model {
  std::vector<std::string> token_bytes;                  // id -> raw bytes
  std::vector<bool> has_token;                           // false for ids no token uses
  std::unordered_map<std::string, TokenId> by_spelling;  // "Ġthe" -> id
  Bpe bpe;
  // BPE results for the bytes of every vocabulary token, computed at load:
  // the frequent words of any text are tokens, so most pieces are found
  // here, even by short encode() calls that build no cache of their own.
  // Read-only after load, so shared by all threads.
  WordCache vocab_words;
  SpecialTokens specials;
  TokenId eos = -1;

  // Appends the tokens of `text` (valid UTF-8) to `out`.
  void encode_valid(std::string_view text, std::vector<TokenId>& out) const;
  // Encodes text free of special tokens; `readable_end` is the end of the
  // whole buffer `text` lies in (the word cache may read up to there).
  void encode_ordinary(std::string_view text, const char* readable_end, WordCache* cache,
                       std::vector<TokenId>& out) const;
  // The first position at or after `target` where `text` can be cut into
  // chunks that encode independently to the same ids (text.size() if none).
  size_t parallel_boundary(std::string_view text, size_t target) const;
  // Throws gptneo::Error unless `id` names a token.
  void check_id(TokenId id) const;
};

// Fills an empty `model` from the files' contents. Throws gptneo::Error,
// naming the file, for a merge naming an unknown token, a missing byte token,
// an id used twice or out of range.
void build_model(const TokenizerFiles& files, Model& model);

}  // namespace gptneo::tok
