// Batches: prompts run together in batched forward passes give the results
// each gets alone with the same seed; the --batch-file CLI path.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "gptneo/generate.h"
#include "test_support.h"

namespace gptneo {
namespace {

Model& mini() {
  static std::unique_ptr<Model> m = Model::load(test::neo_trained_dir());
  return *m;
}
const Tokenizer& tok() {
  static Tokenizer t = Tokenizer::load(test::neo_trained_dir());
  return t;
}

std::vector<GenerateRequest> requests() {
  std::vector<GenerateRequest> r(4);
  r[0].prompt = tok().encode("Once upon a time");
  r[0].options.max_new_tokens = 12;
  r[0].options.sampling.greedy = true;
  r[1].prompt = tok().encode("The computer is a machine that");
  r[1].options.max_new_tokens = 20;
  r[1].options.seed = 5;
  r[1].options.sampling.temperature = 0.9f;
  r[1].options.stop_at_eos = false;
  r[2].prompt = tok().encode("In the beginning");
  r[2].options.max_new_tokens = 7;
  r[2].options.seed = 6;
  r[2].options.num_return_sequences = 2;
  r[2].options.sampling.top_k = 40;
  r[3].prompt = tok().encode("def main():");
  r[3].options.max_new_tokens = 15;
  r[3].options.seed = 7;
  r[3].options.stop = {"\n"};
  return r;
}

TEST(GenerateBatch, BatchedRequestsEqualOneAtATimeWithTheSameSeeds) {
  const auto reqs = requests();
  int events = 0;
  const auto batched = generate_batch(mini(), &tok(), reqs, [&](const StreamEvent& e) {
    EXPECT_LT(e.request, 4);
    ++events;
    return true;
  });
  ASSERT_EQ(batched.size(), reqs.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const auto alone = generate(mini(), &tok(), reqs[i].prompt, reqs[i].options);
    ASSERT_EQ(batched[i].choices.size(), alone.choices.size());
    for (size_t c = 0; c < alone.choices.size(); ++c) {
      EXPECT_EQ(batched[i].choices[c].tokens, alone.choices[c].tokens);
      EXPECT_EQ(batched[i].choices[c].text, alone.choices[c].text);
      EXPECT_EQ(batched[i].choices[c].finish_reason, alone.choices[c].finish_reason);
      tokens += static_cast<int64_t>(alone.choices[c].tokens.size());
    }
    // A request without a seed draws one of its own each run (greedy output does not depend on it).
    if (reqs[i].options.seed) EXPECT_EQ(batched[i].seed, alone.seed);
  }
  EXPECT_EQ(events, tokens) << "one event per token";
}

TEST(GenerateBatch, CliBatchFileWritesOneResultPerLineMatchingSingleRuns) {
  test::TempDir d;
  test::write_file(d / "prompts.jsonl",
                   "{\"prompt\": \"Once upon a time\", \"max_tokens\": 10, \"seed\": 1, \"id\": \"a\"}\n"
                   "\n"
                   "{\"prompt\": \"The meaning of life is\", \"max_new_tokens\": 6, \"seed\": 2, \"n\": 2}\n"
                   "{\"prompt\": \"Hello\", \"max_new_tokens\": 5, \"num_beams\": 2}\n");
  const auto r = test::run_cli({"-q", "generate", "--batch-file", (d / "prompts.jsonl").string(), "--temperature",
                                "1", "--top-p", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["id"], "a");
  EXPECT_EQ(out[1]["choices"].size(), 2u);
  EXPECT_TRUE(out[2]["choices"][0].contains("score"));
  const auto single = test::run_cli({"-q", "generate", "-p", "Once upon a time", "-n", "10", "--seed", "1",
                                     "--temperature", "1", "--top-p", "1", "--json"});
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_EQ(out[0]["tokens"], nlohmann::json::parse(single.out)["tokens"]);
}

TEST(GenerateBatch, CliBatchFileErrorsNameTheLine) {
  test::TempDir d;
  test::write_file(d / "bad.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \"x\", \"temperature\": \"hot\"}\n");
  const auto r = test::run_cli({"-q", "generate", "--batch-file", (d / "bad.jsonl").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("temperature"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace gptneo
