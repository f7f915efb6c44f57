// Tests of the GPT-2 byte-level BPE tokenizer against the reference goldens
// (tests/data/tokenizer/, copied from the reference data), plus its file
// handling, UTF-8 handling, streaming decoder and worst-case inputs.
#include "gptneo/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "gptneo/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"

namespace fs = std::filesystem;
using gptneo::Error;
using gptneo::StreamDecoder;
using gptneo::TokenId;
using gptneo::Tokenizer;

namespace {

const fs::path kDataDir = fs::path(GPTNEO_TEST_DATA) / "tokenizer";

// Loading parses megabytes of JSON; load each layout once for all tests.
const Tokenizer& from_tokenizer_json() {
  static const Tokenizer tokenizer = Tokenizer::load(kDataDir / "tokenizer.json");
  return tokenizer;
}

const Tokenizer& from_vocab_and_merges() {
  static const Tokenizer tokenizer = Tokenizer::load(kDataDir / "vocab.json");
  return tokenizer;
}

struct GoldenCase {
  std::string text;
  std::vector<TokenId> ids;
};

const std::vector<GoldenCase>& goldens() {
  static const std::vector<GoldenCase> cases = [] {
    std::ifstream in(kDataDir / "tokenizer.golden.json");
    const auto root = nlohmann::json::parse(in);
    std::vector<GoldenCase> result;
    for (const auto& entry : root) {
      result.push_back({entry.at("text").get<std::string>(), entry.at("ids").get<std::vector<TokenId>>()});
    }
    return result;
  }();
  return cases;
}

std::string all_golden_text() {
  std::string text;
  for (const auto& c : goldens()) text += c.text + "\n";
  return text;
}

// A scratch folder for the file-handling tests, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("gptneo_tok_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return path_ / name;
  }

 private:
  fs::path path_;
};

std::vector<std::string> pieces_of(std::string_view text) {
  gptneo::tok::PreTokenizer pretokenizer(text);
  std::vector<std::string> pieces;
  std::string_view piece;
  while (pretokenizer.next(piece)) pieces.emplace_back(piece);
  return pieces;
}

// A vocabulary of just the 256 byte tokens (ids 0..255), then `extra`
// tokens, spelled in the byte-level alphabet: small files for tests that
// need a tokenizer but not GPT-2's.
nlohmann::json byte_vocab(const std::vector<std::string>& extra = {}) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[gptneo::tok::bytes_to_chars(std::string(1, static_cast<char>(b)))] = b;
  for (const std::string& token : extra) {
    if (!vocab.contains(token)) vocab[token] = static_cast<int>(vocab.size());
  }
  return vocab;
}

std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no gptneo::Error thrown)";
}

}  // namespace

// ---- goldens -------------------------------------------------------------------

TEST(TokenizerGolden, EveryTextEncodesToTheGoldenIds) {
  ASSERT_FALSE(goldens().empty());
  for (const auto& c : goldens()) {
    EXPECT_EQ(from_tokenizer_json().encode(c.text), c.ids) << "text: " << c.text;
  }
}

TEST(TokenizerGolden, RandomTextOfEveryScriptMatchesTiktoken) {
  // 60 kB of letters, numbers, marks, whitespace and symbols from all of
  // Unicode 14 plus contractions and special-token look-alikes, encoded by
  // js-tiktoken (an independent implementation; see
  // tools/tokenizer_crosscheck/). Exercises every character class table.
  std::ifstream in(kDataDir / "unicode_mix.golden.json");
  const auto golden = nlohmann::json::parse(in);
  const std::string text = golden.at("text").get<std::string>();
  const std::vector<TokenId> ids = golden.at("ids").get<std::vector<TokenId>>();
  EXPECT_EQ(from_tokenizer_json().encode(text), ids);
  EXPECT_EQ(from_tokenizer_json().decode(ids), text);
}

TEST(TokenizerGolden, EveryGoldenDecodesBackToItsText) {
  for (const auto& c : goldens()) {
    EXPECT_EQ(from_tokenizer_json().decode(c.ids), c.text);
  }
}

TEST(TokenizerGolden, VocabAndMergesLayoutGivesTheSameIds) {
  for (const auto& c : goldens()) {
    EXPECT_EQ(from_vocab_and_merges().encode(c.text), c.ids) << "text: " << c.text;
  }
  EXPECT_EQ(from_vocab_and_merges().vocab_size(), from_tokenizer_json().vocab_size());
}

TEST(TokenizerGolden, VocabularyFacts) {
  for (const Tokenizer* tok : {&from_tokenizer_json(), &from_vocab_and_merges()}) {
    EXPECT_EQ(tok->vocab_size(), 50257);
    EXPECT_EQ(tok->eos_id(), 50256);
    EXPECT_EQ(tok->token_id("<|endoftext|>"), 50256);
    EXPECT_EQ(tok->token_id("Ġworld"), 995);  // the files' spelling
    EXPECT_EQ(tok->token_id(" world"), 995);  // raw bytes
    EXPECT_EQ(tok->token_id("no such token here"), std::nullopt);
    EXPECT_EQ(tok->token_bytes(995), " world");
    EXPECT_EQ(tok->token_bytes(50256), "<|endoftext|>");
  }
}

TEST(TokenizerGolden, ConcurrentEncodesAgree) {
  const std::string text = all_golden_text() + all_golden_text();
  const std::vector<TokenId> expected = from_tokenizer_json().encode(text);
  std::vector<std::vector<TokenId>> results(4);
  {
    std::vector<std::jthread> threads;
    for (auto& result : results) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20; ++i) result = from_tokenizer_json().encode(text);
      });
    }
  }
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(TokenizerGolden, EncodeParallelMatchesEncode) {
  // Several megabytes so that encode_parallel really splits.
  std::string text;
  const std::string golden = all_golden_text();
  while (text.size() < (size_t{3} << 20)) text += golden + "<|endoftext|>" + golden;
  const std::vector<TokenId> expected = from_tokenizer_json().encode(text);
  EXPECT_EQ(from_tokenizer_json().encode_parallel(text, 4), expected);
  EXPECT_EQ(from_tokenizer_json().encode_parallel(text, 1), expected);
  EXPECT_EQ(from_tokenizer_json().encode_parallel("Hello world", 8), (std::vector<TokenId>{15496, 995}));
}

// ---- special tokens --------------------------------------------------------------

TEST(TokenizerSpecialTokens, EndOfTextInsideTextBecomesItsId) {
  const Tokenizer& tok = from_tokenizer_json();
  const std::vector<TokenId> hello = tok.encode("Hello");
  const std::vector<TokenId> world = tok.encode(" world");
  std::vector<TokenId> expected = hello;
  expected.push_back(50256);
  expected.insert(expected.end(), world.begin(), world.end());
  EXPECT_EQ(tok.encode("Hello<|endoftext|> world"), expected);
  EXPECT_EQ(tok.encode("<|endoftext|><|endoftext|>"), (std::vector<TokenId>{50256, 50256}));
  EXPECT_EQ(from_vocab_and_merges().encode("a<|endoftext|>b"), tok.encode("a<|endoftext|>b"));
}

TEST(TokenizerSpecialTokens, PartialMarkerIsOrdinaryText) {
  const std::vector<TokenId> ids = from_tokenizer_json().encode("<|endoftext| <|endof");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
  EXPECT_EQ(from_tokenizer_json().decode(ids), "<|endoftext| <|endof");
}

TEST(TokenizerSpecialTokens, SeveralAddedTokensMatchLeftmostLongest) {
  // A tokenizer.json with byte tokens only and three added tokens, two
  // sharing a prefix; non-special added tokens are cut out too.
  TempDir dir;
  nlohmann::json root;
  root["model"] = {{"type", "BPE"}, {"vocab", byte_vocab()}, {"merges", nlohmann::json::array()}};
  root["added_tokens"] = {{{"id", 300}, {"content", "<|a|>"}, {"special", true}},
                          {{"id", 301}, {"content", "<|a|>b"}, {"special", true}},
                          {{"id", 302}, {"content", "[X]"}, {"special", false}}};
  const Tokenizer tok = Tokenizer::load(dir.write("tokenizer.json", root.dump()));
  const TokenId q = *tok.token_id("q"), z = *tok.token_id("z");
  EXPECT_EQ(tok.encode("q<|a|>b<|a|>[X]z"), (std::vector<TokenId>{q, 301, 300, 302, z}));
  EXPECT_EQ(tok.decode(std::vector<TokenId>{301, 302}), "<|a|>b[X]");
  EXPECT_EQ(tok.eos_id(), 300);  // no <|endoftext|>: the first special token
  EXPECT_EQ(tok.vocab_size(), 303);
  EXPECT_THROW(tok.decode(std::vector<TokenId>{299}), Error);  // an id no token uses
}

// ---- pre-tokenizer ---------------------------------------------------------------

TEST(TokenizerPreTokenizer, SplitsLikeTheGpt2Regex) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces_of("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces_of("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(pieces_of("a \t b"), (V{"a", " \t", " b"}));
  EXPECT_EQ(pieces_of("x\n\n\ny"), (V{"x", "\n\n", "\n", "y"}));
  EXPECT_EQ(pieces_of("end  "), (V{"end", "  "}));
  EXPECT_EQ(pieces_of("it's HE'S we'll 'x ''s"),
            (V{"it", "'s", " HE", "'", "S", " we", "'ll", " '", "x", " ''", "s"}));
  EXPECT_EQ(pieces_of("v1.2 3,000"), (V{"v", "1", ".", "2", " 3", ",", "000"}));
  EXPECT_EQ(pieces_of("f(n - 1);"), (V{"f", "(", "n", " -", " 1", ");"}));
  // U+3000 IDEOGRAPHIC SPACE is whitespace (the backtrack steps over all 3
  // bytes) but not " ", so it does not join the word after it.
  EXPECT_EQ(pieces_of("a\xE3\x80\x80\xE3\x80\x80"
                      "b"),
            (V{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(pieces_of("a\xE3\x80\x80\xE3\x80\x80 b"), (V{"a", "\xE3\x80\x80\xE3\x80\x80", " b"}));
  // NBSP is \s but not " ", so it never joins the word after it.
  EXPECT_EQ(pieces_of("x\xC2\xA0y"), (V{"x", "\xC2\xA0", "y"}));
  // A combining mark (U+0301) is neither a letter nor a number.
  EXPECT_EQ(pieces_of("e\xCC\x81t"), (V{"e", "\xCC\x81", "t"}));
  EXPECT_EQ(pieces_of(""), V{});
}

// ---- UTF-8 -----------------------------------------------------------------------

TEST(TokenizerUtf8, InvalidInputIsRejectedWithItsOffset) {
  const Tokenizer& tok = from_tokenizer_json();
  EXPECT_NE(error_message([&] { tok.encode("abc\xFFzz"); }).find("offset 3"), std::string::npos);
  EXPECT_NE(error_message([&] { tok.encode("ok \xE2\x82"); }).find("offset 3"), std::string::npos);
  EXPECT_THROW(tok.encode("\xC0\x80"), Error);          // overlong NUL
  EXPECT_THROW(tok.encode("\xED\xA0\x80"), Error);      // surrogate U+D800
  EXPECT_THROW(tok.encode("\xF4\x90\x80\x80"), Error);  // above U+10FFFF
  EXPECT_THROW(tok.encode_parallel("\x80", 2), Error);
}

TEST(TokenizerUtf8, FirstInvalid) {
  using gptneo::utf8_first_invalid;
  EXPECT_EQ(utf8_first_invalid(""), std::nullopt);
  EXPECT_EQ(utf8_first_invalid("plain ASCII text, long enough for the 8-byte path"), std::nullopt);
  EXPECT_EQ(utf8_first_invalid("caf\xC3\xA9 \xF0\x9F\x99\x82"), std::nullopt);
  EXPECT_EQ(utf8_first_invalid("0123456789\x80"), 10u);
  EXPECT_EQ(utf8_first_invalid("ab\xC3"), 2u);
  EXPECT_EQ(utf8_first_invalid("ab\xE0\x9F\x80"), 2u);  // overlong 3-byte form
  EXPECT_EQ(utf8_first_invalid("\xF0\x9F\x99"), 0u);
}

TEST(TokenizerUtf8, CompletePrefix) {
  using gptneo::utf8_complete_prefix;
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F"), 2u);  // emoji cut after 2 of 4 bytes
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x99"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x99\x82"), 6u);
  EXPECT_EQ(utf8_complete_prefix("\xC3"), 0u);
  EXPECT_EQ(utf8_complete_prefix("a\xE0\x80"), 3u);  // can never become valid: not held back
  EXPECT_EQ(utf8_complete_prefix("a\xFF"), 2u);
  EXPECT_EQ(utf8_complete_prefix("\x80\x80"), 2u);
}

// ---- decoding and streaming ----------------------------------------------------

TEST(TokenizerDecode, OutOfRangeIdThrows) {
  const Tokenizer& tok = from_tokenizer_json();
  const std::vector<TokenId> bad{15496, 50257};
  EXPECT_NE(error_message([&] { tok.decode(bad); }).find("50257"), std::string::npos);
  EXPECT_THROW(tok.decode(std::vector<TokenId>{-1}), Error);
  EXPECT_THROW(tok.token_bytes(1 << 20), Error);
  StreamDecoder stream(tok);
  EXPECT_THROW(stream.push(50257), Error);
}

TEST(TokenizerStream, NeverSplitsACharacterAndLosesNoBytes) {
  const Tokenizer& tok = from_tokenizer_json();
  for (const auto& c : goldens()) {
    StreamDecoder stream(tok);
    std::string joined;
    for (const TokenId id : c.ids) {
      const std::string piece = stream.push(id);
      EXPECT_EQ(gptneo::utf8_first_invalid(piece), std::nullopt) << "text: " << c.text;
      joined += piece;
    }
    joined += stream.flush();
    EXPECT_EQ(joined, tok.decode(c.ids));
  }
}

TEST(TokenizerStream, EmojiSplitIntoByteTokensIsHeldBackUntilComplete) {
  const Tokenizer& tok = from_tokenizer_json();
  // U+1F642 SLIGHTLY SMILING FACE: GPT-2 has no token for it, so its 4 bytes
  // come as several tokens, none of them a whole character.
  const std::string emoji = "\xF0\x9F\x99\x82";
  const std::vector<TokenId> ids = tok.encode(emoji);
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder stream(tok);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(stream.push(ids[i]), "");
  EXPECT_EQ(stream.push(ids.back()), emoji);
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, FlushReturnsAnIncompleteTail) {
  const Tokenizer& tok = from_tokenizer_json();
  const std::vector<TokenId> ids = tok.encode("x\xF0\x9F\x99\x82");
  StreamDecoder stream(tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += stream.push(ids[i]);
  const std::string tail = stream.flush();
  EXPECT_FALSE(tail.empty());
  EXPECT_EQ(out + tail, tok.decode(std::span(ids).first(ids.size() - 1)));
  EXPECT_EQ(stream.flush(), "");
}

// ---- worst cases: must stay linear ------------------------------------------------

TEST(TokenizerLongInput, OneMegabyteWord) {
  const Tokenizer& tok = from_tokenizer_json();
  const std::string word(size_t{1} << 20, 'a');
  const std::vector<TokenId> ids = tok.encode(word);
  EXPECT_LT(ids.size(), word.size() / 2);
  EXPECT_EQ(tok.decode(ids), word);
}

TEST(TokenizerLongInput, OneMegabyteOfSpaces) {
  const Tokenizer& tok = from_tokenizer_json();
  const std::string spaces(size_t{1} << 20, ' ');
  const std::vector<TokenId> ids = tok.encode(spaces);
  EXPECT_EQ(tok.decode(ids), spaces);
  const std::string then_word = spaces + "word";
  EXPECT_EQ(tok.decode(tok.encode(then_word)), then_word);
}

TEST(TokenizerLongInput, LongRandomWordAndEmojiRunRoundTrip) {
  // Long pieces of varied content (the exact ids of long pieces are checked
  // against the definition in TokenizerBpe; this checks scale).
  const Tokenizer& tok = from_tokenizer_json();
  std::mt19937 rng(7);
  std::string word;
  for (int i = 0; i < 100000; ++i) word.push_back(static_cast<char>('a' + rng() % 26));
  const std::vector<TokenId> ids = tok.encode(word);
  EXPECT_EQ(tok.decode(ids), word);
  const std::string emoji_run = std::string(2000, ' ') + [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "\xF0\x9F\x99\x82";
    return s;
  }();
  EXPECT_EQ(tok.decode(tok.encode(emoji_run)), emoji_run);
}

// ---- BPE against a direct, slow transcription of its definition -------------------

namespace {

using MergeRanks = std::map<std::pair<std::string, std::string>, size_t>;

// Merges ranks from merges.txt lines; a repeated pair keeps its last rank.
MergeRanks read_merge_ranks(std::istream& in) {
  MergeRanks ranks;
  std::string line;
  for (size_t rank = 0; std::getline(in, line);) {
    if (line.starts_with("#version")) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    ranks[{line.substr(0, space), line.substr(space + 1)}] = rank++;
  }
  return ranks;
}

// The tokenizers library's BPE, one merge at a time: merge the adjacent pair
// of lowest rank, the leftmost on a tie; repeat. (For merges lists written
// by training, as GPT-2's, this equals GPT-2's original bpe().) Quadratic,
// but obviously right. `spelled` is in the byte-level alphabet.
std::vector<std::string> reference_bpe(const std::string& spelled, const MergeRanks& ranks) {
  std::vector<std::string> word;
  for (size_t i = 0; i < spelled.size();) {
    size_t len = 1;
    while (i + len < spelled.size() && (static_cast<unsigned char>(spelled[i + len]) & 0xC0) == 0x80) ++len;
    word.push_back(spelled.substr(i, len));
    i += len;
  }
  while (word.size() > 1) {
    size_t best_rank = SIZE_MAX;
    size_t best_pos = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < best_rank) {
        best_rank = it->second;
        best_pos = i;
      }
    }
    if (best_rank == SIZE_MAX) break;
    word[best_pos] += word[best_pos + 1];
    word.erase(word.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
  }
  return word;
}

std::vector<TokenId> reference_ids(const Tokenizer& tok, const std::string& word, const MergeRanks& ranks) {
  std::vector<TokenId> ids;
  for (const std::string& token : reference_bpe(gptneo::tok::bytes_to_chars(word), ranks)) {
    ids.push_back(tok.token_id(token).value_or(-1));
  }
  return ids;
}

std::string random_word(std::mt19937& rng, std::string_view alphabet, size_t length) {
  std::string word;
  for (size_t i = 0; i < length; ++i) word.push_back(alphabet[rng() % alphabet.size()]);
  return word;
}

}  // namespace

TEST(TokenizerBpe, MatchesTheDefinitionOnShortAndLongWords) {
  std::ifstream merges(kDataDir / "merges.txt");
  const MergeRanks ranks = read_merge_ranks(merges);
  const Tokenizer& tok = from_tokenizer_json();
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 80; ++trial) {
    // Lengths on both sides of the small/long-piece switch-over (48 bytes),
    // over all letters and over a few frequent ones (longer merges).
    const std::string alphabet = trial % 2 ? "etaoin" : "etaoinshrdlucmfwypvbgkqjxz";
    const std::string word = (rng() % 2 ? " " : "") + random_word(rng, alphabet, 2 + rng() % 150);
    EXPECT_EQ(tok.encode(word), reference_ids(tok, word, ranks)) << "word: " << word;
  }
}

TEST(TokenizerBpe, MergesListNotInTrainingOrder) {
  // Here "ab c" ranks before "a b", which makes "ab": a merge can create a
  // pair of lower rank than itself, so long pieces must take the general
  // (heap) path, which must still merge lowest rank first, leftmost on a tie.
  TempDir dir;
  const std::string merge_lines = "ab c\na b\nc a\nbc a\nb c\nabc abc\nca b\nd d\ndd d\n";
  std::vector<std::string> merged;
  std::istringstream lines(merge_lines);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find(' ');
    merged.push_back(line.substr(0, space) + line.substr(space + 1));
  }
  merged.push_back("<|endoftext|>");
  const nlohmann::json vocab = byte_vocab(merged);
  dir.write("vocab.json", vocab.dump());
  dir.write("merges.txt", "#version: 0.2\n" + merge_lines);
  const Tokenizer tok = Tokenizer::load(dir.path());
  std::istringstream again(merge_lines);
  const MergeRanks ranks = read_merge_ranks(again);

  std::mt19937 rng(99);
  for (int trial = 0; trial < 60; ++trial) {
    const std::string word = random_word(rng, "abcd", 2 + rng() % 200);
    EXPECT_EQ(tok.encode(word), reference_ids(tok, word, ranks)) << "word: " << word;
  }
  EXPECT_EQ(tok.encode("abc"), (std::vector<TokenId>{*tok.token_id("abc")}));
}

TEST(TokenizerBpe, LongRepeatedLetterMatchesTheDefinition) {
  // One letter repeated takes the long-piece path with a few ranks holding
  // thousands of positions each.
  std::ifstream merges(kDataDir / "merges.txt");
  const MergeRanks ranks = read_merge_ranks(merges);
  const Tokenizer& tok = from_tokenizer_json();
  for (const std::string& word :
       {std::string(601, 'a'), std::string(555, '7'), " " + std::string(400, 'e')}) {
    EXPECT_EQ(tok.encode(word), reference_ids(tok, word, ranks)) << "word of " << word.size() << " bytes";
  }
}

// ---- loading ---------------------------------------------------------------------

TEST(TokenizerLoad, FolderAndFilePathsAllWork) {
  EXPECT_TRUE(Tokenizer::exists_in(kDataDir));
  const std::vector<TokenId> expected = goldens()[0].ids;
  EXPECT_EQ(Tokenizer::load(kDataDir).encode(goldens()[0].text), expected);
  EXPECT_EQ(Tokenizer::load(kDataDir / "merges.txt").encode(goldens()[0].text), expected);
}

TEST(TokenizerLoad, FolderWithOnlyVocabAndMerges) {
  TempDir dir;
  fs::copy_file(kDataDir / "vocab.json", dir.path() / "vocab.json");
  EXPECT_FALSE(Tokenizer::exists_in(dir.path()));
  fs::copy_file(kDataDir / "merges.txt", dir.path() / "merges.txt");
  EXPECT_TRUE(Tokenizer::exists_in(dir.path()));
  const Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode(goldens()[3].text), goldens()[3].ids);
}

TEST(TokenizerLoad, MissingFilesAreNamed) {
  TempDir dir;
  EXPECT_FALSE(Tokenizer::exists_in(dir.path()));
  EXPECT_NE(error_message([&] { Tokenizer::load(dir.path()); }).find(dir.path().string()), std::string::npos);
  const fs::path missing = dir.path() / "nope.json";
  EXPECT_NE(error_message([&] { Tokenizer::load(missing); }).find(missing.string()), std::string::npos);
  // vocab.json without its merges.txt
  dir.write("vocab.json", byte_vocab().dump());
  EXPECT_NE(error_message([&] { Tokenizer::load(dir.path()); }).find("merges.txt"), std::string::npos);
}

TEST(TokenizerLoad, MalformedFilesAreReported) {
  TempDir dir;
  const fs::path broken = dir.write("tokenizer.json", "{\"model\": {\"vocab\": {\"a\": 0,");
  const std::string message = error_message([&] { Tokenizer::load(broken); });
  EXPECT_NE(message.find(broken.string()), std::string::npos);
  EXPECT_NE(message.find("JSON"), std::string::npos);

  const fs::path wrong_type = dir.write("other.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_NE(error_message([&] { Tokenizer::load(wrong_type); }).find("WordPiece"), std::string::npos);

  const fs::path bad_id = dir.write("vocab.json", R"({"a": "zero"})");
  dir.write("merges.txt", "#version: 0.2\n");
  EXPECT_NE(error_message([&] { Tokenizer::load(bad_id); }).find("\"a\""), std::string::npos);
}

TEST(TokenizerLoad, MergeNamingAnUnknownTokenIsReported) {
  TempDir dir;
  dir.write("vocab.json", byte_vocab({"Ġt"}).dump());
  dir.write("merges.txt", "#version: 0.2\nĠ t\nnotatoken x\n");
  const std::string message = error_message([&] { Tokenizer::load(dir.path()); });
  EXPECT_NE(message.find("merges.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;
  EXPECT_NE(message.find("notatoken"), std::string::npos) << message;

  dir.write("merges.txt", "#version: 0.2\nĠ t extra\n");
  EXPECT_NE(error_message([&] { Tokenizer::load(dir.path()); }).find("line 2"), std::string::npos);

  // The merged token itself must be in the vocabulary too.
  dir.write("merges.txt", "#version: 0.2\nĠ t\nt t\n");
  const std::string missing_result = error_message([&] { Tokenizer::load(dir.path()); });
  EXPECT_NE(missing_result.find("line 3"), std::string::npos) << missing_result;
  EXPECT_NE(missing_result.find("\"tt\""), std::string::npos) << missing_result;

  // And with only these merges, the files load and encode.
  dir.write("merges.txt", "#version: 0.2\r\nĠ t\r\n");
  const Tokenizer small = Tokenizer::load(dir.path());
  EXPECT_EQ(small.encode(" t"), (std::vector<TokenId>{256}));
  EXPECT_EQ(small.vocab_size(), 257);
  EXPECT_EQ(small.eos_id(), -1);  // this vocabulary has no <|endoftext|>
}

TEST(TokenizerLoad, MergesAsPairsInTokenizerJson) {
  // Newer tokenizers write merges as ["a", "b"]; build such a file from the
  // vocabulary and merges and check it encodes identically.
  TempDir dir;
  nlohmann::json root;
  {
    std::ifstream vocab(kDataDir / "vocab.json");
    root["model"]["vocab"] = nlohmann::json::parse(vocab);
  }
  root["model"]["type"] = "BPE";
  root["model"]["merges"] = nlohmann::json::array();
  std::ifstream merges(kDataDir / "merges.txt");
  std::string line;
  std::getline(merges, line);
  while (std::getline(merges, line)) {
    const size_t space = line.find(' ');
    if (space != std::string::npos) {
      root["model"]["merges"].push_back({line.substr(0, space), line.substr(space + 1)});
    }
  }
  root["added_tokens"] = {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}};
  const fs::path file = dir.write("tokenizer.json", root.dump());
  const Tokenizer tok = Tokenizer::load(file);
  for (const auto& c : goldens()) EXPECT_EQ(tok.encode(c.text), c.ids);
}
