// Training data: text files and folders -> one stream of token ids ->
// fixed-length rows -> a held-out validation split and a seeded shuffle.
//
//  - Every file is a document; documents are joined with <|endoftext|>
//    (a text may also contain the marker itself: it becomes the same id).
//  - Folders are read recursively, files in sorted order; files that are not
//    UTF-8 text are skipped (and counted).
//  - Tokenizing uses all threads: small files in parallel, a large file in
//    pieces (Tokenizer::encode_parallel).
//  - The ids are cached next to the data (PATH.gptneo-tokens), keyed by the
//    files' names, sizes and times and by the tokenizer, so a second run
//    starts at once; a token file may also be given as data directly.
//  - Rows hold seq + 1 consecutive tokens (inputs and the next-token
//    targets), starting every seq tokens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gptneo/tokenizer.h"
#include "train/params.h"

namespace gptneo::training {

struct TokenStream {
  std::vector<int32_t> tokens;
  int64_t documents = 0;      // <|endoftext|> markers (each document ends with one)
  int64_t skipped_files = 0;  // not UTF-8
  int64_t bytes = 0;          // of text read (0 when all came from caches)
  int64_t cached_paths = 0;   // paths whose ids came from a cache
};

struct TokenizeOptions {
  int threads = 1;
  bool use_cache = true;  // read and write PATH.gptneo-tokens
};

// The ids of all documents under `paths`, in order.
TokenStream load_token_stream(const std::vector<std::filesystem::path>& paths, const Tokenizer& tok,
                              const TokenizeOptions& options);

// The token file format: "GNTOKEN1", u64 key, u64 count, count × i32 (little-endian).
void write_token_file(const std::filesystem::path& path, uint64_t key, const std::vector<int32_t>& tokens);
// True and fills `tokens` if `path` is a token file (with `key` when key != 0).
bool read_token_file(const std::filesystem::path& path, uint64_t key, std::vector<int32_t>& tokens);
// The cache path of a data path.
std::filesystem::path token_cache_path(const std::filesystem::path& data_path);

// Rows of seq + 1 tokens over a token stream.
class RowSet {
 public:
  RowSet() = default;
  RowSet(std::vector<int32_t> tokens, int64_t seq, int64_t first_row = 0, int64_t rows = -1);
  int64_t rows() const { return rows_; }
  int64_t seq() const { return seq_; }
  // inputs[0..seq) and targets[0..seq) of row i.
  void row(int64_t i, int32_t* inputs, int32_t* targets) const;
  // Splits off the last `fraction` of the rows (at least one when fraction
  // > 0) as a validation set; *this keeps the rest.
  RowSet split_tail(double fraction);

 private:
  std::shared_ptr<const std::vector<int32_t>> tokens_;
  int64_t seq_ = 0, first_ = 0, rows_ = 0;
};

// The order in which training rows are visited: a fresh permutation for
// every epoch from (seed, epoch), so a run is reproducible and can be
// resumed from (epoch, index).
class Shuffler {
 public:
  Shuffler(int64_t rows, uint64_t seed);
  int64_t next();
  int64_t epoch() const { return epoch_; }
  int64_t index() const { return index_; }
  void seek(int64_t epoch, int64_t index);

 private:
  void shuffle();
  int64_t rows_;
  uint64_t seed_;
  int64_t epoch_ = 0, index_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace gptneo::training
