// gptneo eval end to end: the JSON shape, the table, --prepare, errors.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace gptneo::test {
namespace {

std::string task_arg(const char* kind, const char* file) {
  return std::string(kind) + ":" + (data_dir() / "eval" / file).string();
}

TEST(EvalCli, JsonHasEveryMetricWithItsStderr) {
  const CliResult r = run_cli({"eval", "-q", "-m", neo_tiny_dir().string(), "--tokenizer", tokenizer_dir().string(), "--task", task_arg("lambada", "lambada-val.jsonl"),
                               "--task", task_arg("multiple_choice", "choice-val.jsonl"), "--task",
                               task_arg("perplexity", "docs-val.jsonl"), "--limit", "3", "--bootstrap-iters", "100",
                               "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("lambada-val"));
  const auto& l = j["lambada-val"];
  EXPECT_EQ(l["kind"], "lambada");
  EXPECT_EQ(l["n"], 3);
  EXPECT_TRUE(l["acc"].is_number());
  EXPECT_TRUE(l["acc_stderr"].is_number());
  EXPECT_GT(l["perplexity"].get<double>(), 1.0);
  EXPECT_TRUE(l["perplexity_stderr"].is_number());
  EXPECT_GT(l["examples_per_s"].get<double>(), 0.0);
  const auto& mc = j["choice-val"];
  EXPECT_TRUE(mc["acc_norm"].is_number());
  EXPECT_TRUE(mc["acc_norm_stderr"].is_number());
  const auto& p = j["docs-val"];
  EXPECT_GT(p["word_perplexity"].get<double>(), 1.0);
  EXPECT_TRUE(p["word_perplexity_stderr"].is_null());
  EXPECT_TRUE(p["bits_per_byte"].is_number());
}

TEST(EvalCli, PairsTableShowsCategories) {
  const CliResult r = run_cli({"eval", "-q", "-m", neo_tiny_dir().string(), "--tokenizer", tokenizer_dir().string(), "--task",
                               "pairs:" + (source_dir() / "data" / "bias-probe" / "bias-probe.jsonl").string(),
                               "--limit", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pct_stereotype/gender"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("examples/s"), std::string::npos);
}

TEST(EvalCli, PrepareWritesATaskFile) {
  TempDir dir;
  write_file(dir / "lambada_test.jsonl", "{\"text\": \"one two three\"}\n{\"text\": \"four five\"}\n");
  const CliResult r = run_cli({"eval", "--prepare", "lambada_openai", (dir / "lambada_test.jsonl").string(), "-o",
                               (dir / "out.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir / "out.jsonl"), "{\"text\":\"one two three\"}\n{\"text\":\"four five\"}\n");
  EXPECT_NE(r.err.find("wrote 2 lambada examples"), std::string::npos) << r.err;
}

TEST(EvalCli, ClearErrors) {
  const std::string model = neo_tiny_dir().string();
  auto error_of = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"eval", "-q", "-m", model, "--tokenizer", tokenizer_dir().string()});
    const CliResult r = run_cli(args);
    EXPECT_NE(r.exit_code, 0);
    return r.err;
  };
  EXPECT_NE(error_of({"--task", "nonsense:x.jsonl"}).find("unknown task kind \"nonsense\""), std::string::npos);
  EXPECT_NE(error_of({"--task", "lambada"}).find("expected KIND:FILE"), std::string::npos);
  EXPECT_NE(error_of({"--task", "lambada:/nonexistent.jsonl"}).find("cannot open task file /nonexistent.jsonl"),
            std::string::npos);
  EXPECT_NE(error_of({}).find("give at least one --task"), std::string::npos);
  EXPECT_NE(error_of({"--prepare", "squad", "x"}).find("unknown data set \"squad\""), std::string::npos);
}

}  // namespace
}  // namespace gptneo::test
