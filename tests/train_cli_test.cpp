// gptneo train / plot / convert --merge-lora end to end on tiny models:
// bit-for-bit resume, checkpoint folders, LoRA files, errors.
#include <gtest/gtest.h>

#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "test_support.h"
#include "train/data.h"
#include "train/params.h"

namespace gptneo::training {
namespace {

namespace fs = std::filesystem;

fs::path init_dir() { return test::data_dir() / "train-tiny" / "init"; }

// A token file for the vocab-256 model: a noisy repeating pattern, so that
// the loss can fall.
fs::path make_tokens(const test::TempDir& tmp) {
  std::vector<int32_t> ids;
  Rng rng(3);
  for (int i = 0; i < 3000; ++i) ids.push_back(rng.below(10) == 0 ? static_cast<int32_t>(rng.below(256)) : (i * 7) % 61);
  const fs::path p = tmp / "data.tokens";
  write_token_file(p, 1, ids);
  return p;
}

std::vector<std::string> base_args(const fs::path& data, const fs::path& out) {
  return {"train", "--init", init_dir().string(), "--data", data.string(), "--out", out.string(), "--steps", "10",
          "--batch", "4", "--seq", "16", "--lr", "1e-2", "--warmup", "2", "--save-every", "5", "--eval-every", "5",
          "--eval-rows", "8", "--threads", "2", "-q"};
}

std::vector<nlohmann::json> metrics(const fs::path& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(test::read_file(out / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

test::CliResult run(std::vector<std::string> args, const std::vector<std::string>& extra = {}) {
  args.insert(args.end(), extra.begin(), extra.end());
  return test::run_cli(args);
}

TEST(TrainCli, ResumeContinuesBitForBit) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  const auto straight = run(base_args(data, tmp / "a"));
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  const auto first = run(base_args(data, tmp / "b"), {"--stop-after", "5"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(fs::exists(tmp / "b" / "step-5" / "trainer_state.json"));
  EXPECT_FALSE(fs::exists(tmp / "b" / "step-10"));
  const auto second = run(base_args(data, tmp / "b"), {"--resume"});
  ASSERT_EQ(second.exit_code, 0) << second.err;

  for (const char* f : {"step-5/model.safetensors", "step-10/model.safetensors", "step-10/optimizer.safetensors"})
    EXPECT_TRUE(test::read_file(tmp / "a" / f) == test::read_file(tmp / "b" / f)) << f << " differs";
  const auto ma = metrics(tmp / "a"), mb = metrics(tmp / "b");
  ASSERT_EQ(ma.size(), 11u);  // step 0 (evaluation) + 10 steps
  ASSERT_EQ(mb.size(), ma.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i]["step"], mb[i]["step"]);
    EXPECT_EQ(ma[i]["loss"], mb[i]["loss"]) << "step " << i;
    EXPECT_EQ(ma[i].value("val_loss", -1.0), mb[i].value("val_loss", -1.0)) << "step " << i;
  }
  EXPECT_LT(ma.back()["loss"].get<double>(), ma[1]["loss"].get<double>()) << "the run learns";
  EXPECT_TRUE(ma.back().contains("val_loss"));
  for (const char* key : {"step", "loss", "lr", "tokens_per_s", "grad_norm"}) EXPECT_TRUE(ma[3].contains(key)) << key;
}

TEST(TrainCli, CheckpointsAreHuggingFaceFoldersGptneoLoads) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  const auto r = run(base_args(data, tmp / "out"), {"--steps", "3", "--save-every", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path step = tmp / "out" / "step-3";
  ASSERT_TRUE(fs::exists(step / "config.json"));
  EXPECT_EQ(test::read_json(step / "config.json")["dtype"], "float32");
  const Checkpoint mine = Checkpoint::open(step), ref = Checkpoint::open(init_dir());
  std::vector<std::string> a, b;
  for (const auto& [n, t] : mine.tensors()) a.push_back(n);
  for (const auto& [n, t] : ref.tensors()) b.push_back(n);
  EXPECT_EQ(a, b) << "the reference's names, no lm_head.weight (tied)";
  EXPECT_FALSE(mine.has("lm_head.weight"));
  auto model = Model::load(step);
  EXPECT_EQ(model->config().num_layers, 2);
  EXPECT_FALSE(fs::exists(tmp / "out" / ".step-3.tmp"));
}

TEST(TrainCli, FineTunesFromTextWithTheModelsTokenizer) {
  test::TempDir tmp;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "And God said, Let there be light: and there was light. ";
  test::write_file(tmp / "text.txt", text);
  const auto r = test::run_cli({"train", "--init", test::neo_tiny_dir().string(), "--tokenizer",
                                test::tokenizer_dir().string(), "--data", (tmp / "text.txt").string(),
                                "--out", (tmp / "out").string(), "--steps", "2", "--batch", "2", "--seq", "32",
                                "--threads", "2", "--lr", "1e-3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("train: data"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "text.txt.gptneo-tokens"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "step-2" / "vocab.json")) << "tokenizer files travel with the checkpoint";
  EXPECT_TRUE(fs::exists(tmp / "out" / "step-2" / "merges.txt"));
}

TEST(TrainCli, LoraRunWritesPeftAdaptersThatConvertMerges) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  const auto r = run(base_args(data, tmp / "lora"), {"--lora-rank", "4", "--lora-targets", "q,v,fc", "--lr", "3e-2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path step = tmp / "lora" / "step-10";
  EXPECT_TRUE(fs::exists(step / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(step / "adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(step / "model.safetensors"));
  const auto m = metrics(tmp / "lora");
  EXPECT_LT(m.back()["loss"].get<double>(), m[1]["loss"].get<double>());

  const auto merged = test::run_cli({"convert", "-m", init_dir().string(), "-o", (tmp / "merged").string(),
                                     "--merge-lora", step.string()});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  auto model = Model::load(tmp / "merged");
  EXPECT_EQ(model->config().hidden_size, 32);
}

TEST(TrainCli, TrainsFromScratchFromAConfig) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  const auto r = test::run_cli({"train", "--config", (init_dir() / "config.json").string(), "--data", data.string(),
                                "--out", (tmp / "out").string(), "--tokens", "256", "--batch", "4", "--seq", "16",
                                "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "out" / "step-4" / "model.safetensors"));  // 256 tokens / (4 × 16)
}

TEST(TrainCli, BadInvocationsFailWithAMessage) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  auto no_model = test::run_cli({"train", "--data", data.string(), "--out", (tmp / "x").string(), "--steps", "1"});
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find("--init"), std::string::npos) << no_model.err;
  auto indivisible = run(base_args(data, tmp / "y"), {"--batch", "3", "--accum", "2"});
  EXPECT_NE(indivisible.exit_code, 0);
  EXPECT_NE(indivisible.err.find("multiple"), std::string::npos) << indivisible.err;
  ASSERT_EQ(run(base_args(data, tmp / "z"), {"--steps", "1"}).exit_code, 0);
  auto again = run(base_args(data, tmp / "z"), {"--steps", "1"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  auto too_long = run(base_args(data, tmp / "w"), {"--seq", "64"});
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_NE(too_long.err.find("positions"), std::string::npos) << too_long.err;
}

TEST(TrainCli, PlotDrawsTheLossCurvesAsSvg) {
  test::TempDir tmp;
  const fs::path data = make_tokens(tmp);
  ASSERT_EQ(run(base_args(data, tmp / "run"), {"--steps", "4"}).exit_code, 0);
  const auto r = test::run_cli({"plot", (tmp / "run" / "metrics.jsonl").string(), "-o", (tmp / "loss.svg").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string svg = test::read_file(tmp / "loss.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("run train"), std::string::npos);
  EXPECT_NE(svg.find("run val"), std::string::npos);
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);
  EXPECT_NE(test::run_cli({"plot", data.string(), "-o", (tmp / "x.svg").string()}).exit_code, 0);
}

}  // namespace
}  // namespace gptneo::training
