// Reading tokenizer files: tokenizer.json (the tokenizers library's format)
// or vocab.json + merges.txt (the original GPT-2 layout). This only parses
// and checks the files' shape; building the tokenizer from them (and checking
// that merges name known tokens) is tokenizer.cpp's job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gptneo/tokenizer.h"

namespace gptneo::tok {

struct Merge {
  std::string left;  // both in the byte-level spelling ("Ġt")
  std::string right;
  size_t line;  // 1-based line in merges.txt, 0 for tokenizer.json
};

struct AddedToken {
  std::string content;  // raw text, matched as-is inside input text
  TokenId id;
  bool special;
};

struct TokenizerFiles {
  std::filesystem::path vocab_file;                    // the file vocab and added tokens came from
  std::filesystem::path merges_file;                   // the same as vocab_file for tokenizer.json
  std::vector<std::pair<std::string, TokenId>> vocab;  // spelling -> id
  std::vector<Merge> merges;                           // in rank order
  std::vector<AddedToken> added_tokens;
};

// Reads the files named by `path` (see Tokenizer::load). Throws gptneo::Error
// naming the file for a missing file or a malformed one.
TokenizerFiles read_tokenizer_files(const std::filesystem::path& path);

// True when `dir` holds tokenizer.json, or vocab.json and merges.txt.
bool tokenizer_files_exist(const std::filesystem::path& dir);

}  // namespace gptneo::tok
