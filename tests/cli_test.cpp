// End-to-end tests of the gptneo command-line tool: the exact output
// contracts other tools rely on, and clear errors with a non-zero exit code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_support.h"

namespace gptneo {
namespace {

using test::run_cli;
using nlohmann::json;

std::string tiny() { return test::neo_tiny_dir().string(); }
std::string trained() { return test::neo_trained_dir().string(); }

// Expects a failed run with a one-line message on stderr containing `fragment`.
void expect_failure(const test::CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(r.err.find("Segmentation"), std::string::npos);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal";
}

TEST(Cli, ScorePrintsNllAndArgmaxMatchingTheGolden) {
  const SafetensorsFile g(test::data_dir() / "goldens" / "neo-tiny.golden.safetensors");
  const auto ids = test::ints(g.tensors().at("seq3.input_ids"));
  std::string list;
  for (auto id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const auto r = run_cli({"score", "-m", tiny(), "--ids", list});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  const auto nll = j["nll"].get<std::vector<double>>();
  const auto argmax = j["argmax"].get<std::vector<int64_t>>();
  const auto ref_nll = test::doubles(g.tensors().at("seq3.nll"));
  ASSERT_EQ(nll.size(), ids.size() - 1);
  ASSERT_EQ(argmax.size(), ids.size());
  for (size_t i = 0; i < nll.size(); ++i) EXPECT_NEAR(nll[i], ref_nll[i], 1e-4);
  EXPECT_EQ(argmax, test::ints(g.tensors().at("seq3.argmax")));
}

TEST(Cli, ScoreWorksWithoutTokenizerFiles) {
  // neo-tiny in tests/data has no tokenizer files at all.
  ASSERT_FALSE(std::filesystem::exists(test::neo_tiny_dir() / "vocab.json"));
  const auto r = run_cli({"score", "-m", tiny(), "--ids", "5688"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), json::parse(R"({"nll": [], "argmax": [17649]})"));
}

TEST(Cli, GenerateJsonGreedyMatchesTheGolden) {
  const json golden = test::read_json(test::data_dir() / "goldens" / "neo-trained.golden.json");
  const json& g = golden["greedy"]["Once upon a time"];
  const auto r = run_cli({"generate", "-m", trained(), "-p", "Once upon a time", "-n", "40", "--greedy", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens"], g["prompt_ids"]);
  EXPECT_EQ(j["tokens"], g["greedy"]);
  EXPECT_EQ(j["text"], g["text"]);
}

// Keys and values rounded to f16 barely move the logits: the greedy
// continuation's first tokens are the golden's.
TEST(Cli, GenerateWithAnF16KvCache) {
  const json golden = test::read_json(test::data_dir() / "goldens" / "neo-trained.golden.json");
  const json& g = golden["greedy"]["Once upon a time"];
  const auto r = run_cli({"generate", "-m", trained(), "-p", "Once upon a time", "-n", "20", "--greedy", "--json",
                          "--kv-cache", "f16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["tokens"].size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(j["tokens"][i], g["greedy"][i]) << i;
}

TEST(Cli, GenerateStreamsTheContinuationAndUsesTheBundledModel) {
  const auto r = run_cli({"generate", "-p", "The meaning of life is", "-n", "40", "--greedy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json golden = test::read_json(test::data_dir() / "goldens" / "neo-trained.golden.json");
  EXPECT_EQ(r.out, golden["greedy"]["The meaning of life is"]["text"].get<std::string>());
}

TEST(Cli, GenerateWithASeedIsReproducible) {
  const std::vector<std::string> args = {"generate", "-p", "In the beginning", "-n", "20", "--seed", "1234", "--json"};
  const auto a = run_cli(args), b = run_cli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(json::parse(a.out)["tokens"], json::parse(b.out)["tokens"]);
  EXPECT_EQ(json::parse(a.out)["seed"], 1234);
}

TEST(Cli, GenerateFromPromptIds) {
  const auto r = run_cli({"generate", "-m", tiny(), "--prompt-ids", "5688", "-n", "3", "--greedy", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["tokens"], json::parse("[17649, 17649, 17649]"));
}

TEST(Cli, PerplexityJsonAndWindowArithmetic) {
  // The full 8-window golden is checked in the library test; here the CLI
  // contract: JSON keys, the window arithmetic, progress on stderr.
  const auto r = run_cli({"perplexity", "-m", trained(), "-f", (test::data_dir() / "corpus-val.txt").string(),
                          "--context", "256", "--stride", "128", "--windows", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  // Window 1 scores tokens 1..255, windows 2 and 3 the 128 new tokens each.
  EXPECT_EQ(j["tokens_scored"], 255 + 128 + 128);
  // The file opens with hard text (fortunes): about 300 on these tokens.
  EXPECT_GT(j["perplexity"].get<double>(), 100.0);
  EXPECT_LT(j["perplexity"].get<double>(), 1000.0);
  EXPECT_NE(r.err.find("perplexity"), std::string::npos) << "progress on stderr";
}

TEST(Cli, TokenizeAndDetokenizeRoundTrip) {
  const std::string text = "Hello world, naïve café 🙂 <|endoftext|> end";
  const auto t = run_cli({"tokenize", "--tokenizer", test::tokenizer_dir().string(), "-p", text});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const auto ids = json::parse(t.out).get<std::vector<int>>();
  EXPECT_EQ(ids[0], 15496);  // "Hello"
  EXPECT_NE(std::find(ids.begin(), ids.end(), 50256), ids.end()) << "<|endoftext|> is one special token";
  std::string list;
  for (int id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const auto d = run_cli({"detokenize", "-m", trained(), "--ids", list});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, text);
}

TEST(Cli, TokenizeAFile) {
  const auto r = run_cli({"tokenize", "-m", trained(), "-f", (test::data_dir() / "corpus-val.txt").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(json::parse(r.out).size(), 100000u);
}

TEST(Cli, ErrorsAreOneLineAndNonZero) {
  expect_failure(run_cli({"generate", "-m", "/nonexistent", "-p", "hi"}), "/nonexistent");
  expect_failure(run_cli({"generate", "-p", "bad \xff\xfe utf-8"}), "UTF-8");
  expect_failure(run_cli({"score", "-m", tiny(), "--ids", "1,x,3"}), "\"x\"");
  expect_failure(run_cli({"score", "-m", tiny(), "--ids", "1,99999"}), "99999");
  expect_failure(run_cli({"score", "-m", tiny()}), "--ids");
  expect_failure(run_cli({"generate", "-m", tiny(), "-p", "needs a tokenizer"}), "tokenizer");
  expect_failure(run_cli({"perplexity", "-m", trained(), "-f", "/nonexistent.txt"}), "/nonexistent.txt");
  expect_failure(run_cli({"perplexity", "-m", trained(), "-f", (test::data_dir() / "corpus-val.txt").string(),
                          "--context", "2048"}),
                 "2048");
  expect_failure(run_cli({"generate", "-p", "x", "--dtype", "f8"}), "f8");
  expect_failure(run_cli({"generate", "-p", "x", "--kv-cache", "q4"}), "--kv-cache \"q4\"");
  expect_failure(run_cli({"frobnicate"}), "subcommand");
  expect_failure(run_cli({"generate", "-p", "x", "--temperature", "-1"}), "temperature");
}

TEST(Cli, OverLongPromptIsAnError) {
  std::string ids = "1";
  for (int i = 0; i < 200; ++i) ids += ",1";
  expect_failure(run_cli({"generate", "-m", tiny(), "--prompt-ids", ids, "--json"}), "201");
  expect_failure(run_cli({"score", "-m", tiny(), "--ids", ids}), "128");
}

}  // namespace
}  // namespace gptneo
