// GPT-Neo against the Hugging Face reference: NLL at every position, logits
// at stored positions, argmax, greedy continuations and perplexity, within the
// tolerances of the reference README.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "gptneo/generate.h"
#include "gptneo/model.h"
#include "gptneo/scoring.h"
#include "gptneo/tokenizer.h"
#include "test_support.h"

namespace gptneo {
namespace {

using test::doubles;
using test::ints;

constexpr double kNllTol = 1e-4;
constexpr double kLogitTol = 1e-3;
constexpr double kMarginTol = 1e-3;

struct GoldenModel {
  std::string name;
  std::filesystem::path dir;
};

void PrintTo(const GoldenModel& m, std::ostream* os) { *os << m.name; }

Model& cached_model(const std::filesystem::path& dir) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[dir.string()];
  if (!m) m = Model::load(dir);
  return *m;
}

// Top-1 minus top-2 of a logits row.
double margin(const float* row, int64_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
  return double(v[0]) - double(v[1]);
}

class GptNeoGolden : public ::testing::TestWithParam<GoldenModel> {
 protected:
  std::filesystem::path golden(const std::string& ext) const {
    return test::data_dir() / "goldens" / (GetParam().name + ".golden." + ext);
  }
};

TEST_P(GptNeoGolden, NllLogitsAndArgmaxOfEverySequence) {
  Model& model = cached_model(GetParam().dir);
  const SafetensorsFile g(golden("safetensors"));
  const int64_t V = model.config().vocab_size;
  int checked = 0;
  for (int s = 0;; ++s) {
    const std::string p = "seq" + std::to_string(s) + ".";
    if (!g.tensors().count(p + "input_ids")) break;
    const auto ids64 = ints(g.tensors().at(p + "input_ids"));
    const std::vector<TokenId> ids(ids64.begin(), ids64.end());
    const auto ref_nll = doubles(g.tensors().at(p + "nll"));
    const auto ref_argmax = ints(g.tensors().at(p + "argmax"));
    const auto positions = ints(g.tensors().at(p + "positions"));
    const auto ref_logits = doubles(g.tensors().at(p + "logits_at"));
    SCOPED_TRACE("sequence " + std::to_string(s) + " of length " + std::to_string(ids.size()));

    KVCache cache = model.new_cache(static_cast<int64_t>(ids.size()));
    const SequenceChunk chunk{&cache, ids, true};
    const Logits logits = model.forward({&chunk, 1});
    ASSERT_EQ(logits.rows, static_cast<int64_t>(ids.size()));
    for (size_t t = 0; t + 1 < ids.size(); ++t)
      EXPECT_NEAR(token_nll({logits.row(t), size_t(V)}, ids[t + 1]), ref_nll[t], kNllTol) << "position " << t;
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* row = logits.row(t);
      const auto best = std::max_element(row, row + V) - row;
      // Where our own top-2 margin is clear of the tolerance, the reference's
      // margin is above 1e-3 too, so the argmax must agree.
      if (margin(row, V) > kMarginTol + 2 * kLogitTol) {
        EXPECT_EQ(best, ref_argmax[t]) << "position " << t;
      }
    }
    for (size_t i = 0; i < positions.size(); ++i) {
      const float* row = logits.row(positions[i]);
      double worst = 0;
      for (int64_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(row[v] - ref_logits[i * V + v]));
      EXPECT_LE(worst, kLogitTol) << "logits at position " << positions[i];
      const double ref_margin = margin(std::vector<float>(ref_logits.begin() + i * V, ref_logits.begin() + (i + 1) * V).data(), V);
      if (ref_margin > kMarginTol) {
        EXPECT_EQ(std::max_element(row, row + V) - row, ref_argmax[positions[i]]);
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST_P(GptNeoGolden, GreedyContinuationsMatchUpToTheFirstNearTie) {
  Model& model = cached_model(GetParam().dir);
  const auto j = test::read_json(golden("json"));
  ASSERT_TRUE(j.contains("greedy"));
  for (const auto& [name, g] : j["greedy"].items()) {
    SCOPED_TRACE("greedy prompt " + name);
    const auto& prompt_json = g.contains("prompt_ids") ? g["prompt_ids"] : g["prompt"];
    const std::vector<TokenId> prompt = prompt_json.get<std::vector<TokenId>>();
    const std::vector<TokenId> ref = g["greedy"].get<std::vector<TokenId>>();
    const std::vector<double> margins = g["margins"].get<std::vector<double>>();
    GenerateOptions options;
    options.max_new_tokens = static_cast<int64_t>(ref.size());
    options.sampling.greedy = true;
    options.stop_at_eos = false;
    const GenerateResult r = generate(model, prompt, options);
    ASSERT_EQ(r.tokens.size(), ref.size());
    for (size_t t = 0; t < ref.size(); ++t) {
      ASSERT_EQ(r.tokens[t], ref[t]) << "step " << t;
      if (margins[t] < kMarginTol) break;  // a near tie: later tokens may differ
    }
    if (g.contains("text")) {
      const Tokenizer tok = Tokenizer::load(GetParam().dir);
      size_t exact = 0;
      while (exact < ref.size() && margins[exact] >= kMarginTol) ++exact;
      if (exact == ref.size()) {
        EXPECT_EQ(tok.decode(r.tokens), g["text"].get<std::string>());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GptNeoGolden,
                         ::testing::Values(GoldenModel{"neo-tiny", test::neo_tiny_dir()},
                                           GoldenModel{"neo-trained", test::neo_trained_dir()}),
                         [](const auto& info) { return info.param.name == "neo-tiny" ? "NeoTiny" : "NeoTrained"; });

TEST(GptNeoGoldenPerplexity, NeoTrainedOnCorpusVal) {
  Model& model = cached_model(test::neo_trained_dir());
  const auto j = test::read_json(test::data_dir() / "goldens" / "neo-trained.golden.json");
  const double ref = j["perplexity"]["value"].get<double>();
  const Tokenizer tok = Tokenizer::load(test::neo_trained_dir());
  const auto tokens = tok.encode(test::read_file(test::data_dir() / "corpus-val.txt"));
  PerplexityOptions options;
  options.context = 1024;
  options.stride = 1024;
  options.max_windows = j["perplexity"]["windows"].get<int64_t>();
  const PerplexityResult r = perplexity(model, tokens, options);
  EXPECT_EQ(r.tokens_scored, j["perplexity"]["tokens_scored"].get<int64_t>());
  EXPECT_NEAR(r.perplexity / ref - 1.0, 0.0, 2e-5) << "perplexity " << r.perplexity << " vs " << ref;
}

}  // namespace
}  // namespace gptneo
