// The training data pipeline: documents, <|endoftext|>, the token cache,
// rows, the validation split and the shuffle.
#include <algorithm>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "gptneo/error.h"
#include "test_support.h"
#include "train/data.h"

namespace gptneo::training {
namespace {

namespace fs = std::filesystem;

const Tokenizer& gpt2() {
  static const Tokenizer tok = Tokenizer::load(test::tokenizer_dir());
  return tok;
}

std::vector<int32_t> encode(const std::string& s) {
  const auto ids = gpt2().encode(s);
  return {ids.begin(), ids.end()};
}

// A folder of documents: two texts (one nested), a hidden file and a binary
// file, which are skipped.
void make_corpus(const fs::path& dir) {
  fs::create_directories(dir / "sub");
  test::write_file(dir / "b.txt", "Second document.\n");
  test::write_file(dir / "a.txt", "In the beginning was the Word.");
  test::write_file(dir / "sub" / "c.md", "# Third<|endoftext|>tail");
  test::write_file(dir / ".hidden", "never read");
  test::write_file(dir / "image.bin", std::string("\xff\xfe\x00\x01", 4));
}

TEST(TrainData, DocumentsAreJoinedWithEndOfTextInSortedOrder) {
  test::TempDir tmp;
  make_corpus(tmp / "corpus");
  const TokenStream s = load_token_stream({tmp / "corpus"}, gpt2(), {2, false});
  std::vector<int32_t> expected;
  for (const char* text : {"In the beginning was the Word.", "Second document.\n", "# Third<|endoftext|>tail"}) {
    const auto ids = encode(text);
    expected.insert(expected.end(), ids.begin(), ids.end());
    expected.push_back(50256);
  }
  EXPECT_EQ(s.tokens, expected);
  EXPECT_EQ(s.documents, 3);
  EXPECT_EQ(s.skipped_files, 1);
  EXPECT_FALSE(fs::exists(token_cache_path(tmp / "corpus"))) << "no cache when disabled";
}

TEST(TrainData, ParallelTokenizingGivesTheSameIds) {
  test::TempDir tmp;
  fs::create_directories(tmp / "many");
  for (int i = 0; i < 20; ++i)
    test::write_file(tmp / "many" / ("doc" + std::to_string(100 + i) + ".txt"),
                     "Document number " + std::to_string(i) + " says hello, world! " + std::string(i, 'x'));
  const TokenStream one = load_token_stream({tmp / "many"}, gpt2(), {1, false});
  const TokenStream four = load_token_stream({tmp / "many"}, gpt2(), {4, false});
  EXPECT_EQ(one.tokens, four.tokens);
  EXPECT_EQ(one.documents, 20);
}

TEST(TrainData, TheTokenCacheIsReusedAndInvalidatedByChanges) {
  test::TempDir tmp;
  make_corpus(tmp / "corpus");
  const TokenStream first = load_token_stream({tmp / "corpus"}, gpt2(), {2, true});
  ASSERT_TRUE(fs::exists(tmp / "corpus.gptneo-tokens"));
  EXPECT_EQ(first.cached_paths, 0);
  const TokenStream second = load_token_stream({tmp / "corpus"}, gpt2(), {2, true});
  EXPECT_EQ(second.cached_paths, 1);
  EXPECT_EQ(second.tokens, first.tokens);
  // A changed file (here: longer) makes the cache stale.
  test::write_file(tmp / "corpus" / "b.txt", "Second document, edited.\n");
  const TokenStream third = load_token_stream({tmp / "corpus"}, gpt2(), {2, true});
  EXPECT_EQ(third.cached_paths, 0);
  EXPECT_NE(third.tokens, first.tokens);
  // The cache file itself is accepted as data.
  const TokenStream direct = load_token_stream({tmp / "corpus.gptneo-tokens"}, gpt2(), {1, true});
  EXPECT_EQ(direct.tokens, third.tokens);
}

TEST(TrainData, BadDataIsReportedClearly) {
  test::TempDir tmp;
  EXPECT_THROW(load_token_stream({tmp / "missing"}, gpt2(), {1, false}), Error);
  fs::create_directories(tmp / "empty");
  EXPECT_THROW(load_token_stream({tmp / "empty"}, gpt2(), {1, false}), Error);
  write_token_file(tmp / "bad.tokens", 1, {1, 2, 99999});
  EXPECT_THROW(load_token_stream({tmp / "bad.tokens"}, gpt2(), {1, false}), Error);
  // A truncated token file.
  write_token_file(tmp / "cut.tokens", 1, {1, 2, 3});
  fs::resize_file(tmp / "cut.tokens", fs::file_size(tmp / "cut.tokens") - 2);
  std::vector<int32_t> ids;
  EXPECT_THROW(read_token_file(tmp / "cut.tokens", 0, ids), Error);
}

TEST(TrainData, RowsHoldInputsAndNextTokenTargets) {
  std::vector<int32_t> stream(23);
  std::iota(stream.begin(), stream.end(), 100);
  RowSet rows(stream, 5);
  ASSERT_EQ(rows.rows(), 4);  // (23 - 1) / 5
  int32_t in[5], tg[5];
  rows.row(2, in, tg);
  EXPECT_EQ(std::vector<int32_t>(in, in + 5), (std::vector<int32_t>{110, 111, 112, 113, 114}));
  EXPECT_EQ(std::vector<int32_t>(tg, tg + 5), (std::vector<int32_t>{111, 112, 113, 114, 115}));
  RowSet val = rows.split_tail(0.3);  // ceil(1.2) = 2 rows
  EXPECT_EQ(rows.rows(), 2);
  ASSERT_EQ(val.rows(), 2);
  val.row(0, in, tg);
  EXPECT_EQ(in[0], 110);
}

TEST(TrainData, ShuffleIsASeededPermutationPerEpochAndResumable) {
  Shuffler a(10, 42), b(10, 42), c(10, 43);
  std::vector<int64_t> ea, eb, ec, e2;
  for (int i = 0; i < 10; ++i) ea.push_back(a.next()), eb.push_back(b.next()), ec.push_back(c.next());
  EXPECT_EQ(ea, eb);
  EXPECT_NE(ea, ec);
  EXPECT_EQ(std::set<int64_t>(ea.begin(), ea.end()).size(), 10u);
  for (int i = 0; i < 10; ++i) e2.push_back(a.next());
  EXPECT_NE(e2, ea) << "each epoch has its own order";
  EXPECT_EQ(a.epoch(), 1);
  // Seeking to (epoch 1, index 3) continues as the original did.
  Shuffler d(10, 42);
  d.seek(1, 3);
  for (int i = 3; i < 10; ++i) EXPECT_EQ(d.next(), e2[i]);
}

}  // namespace
}  // namespace gptneo::training
