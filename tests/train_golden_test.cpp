// Training against the reference (transformers + torch.optim.AdamW, float64):
// 20 AdamW steps of models/train-tiny-init on one fixed batch
// (tests/data/train-tiny, copied from reference/goldens/train-tiny.*).
#include <cmath>

#include <gtest/gtest.h>

#include "io/checkpoint.h"
#include "test_support.h"
#include "train/model.h"
#include "train/optimizer.h"

namespace gptneo::training {
namespace {

namespace fs = std::filesystem;

fs::path golden_dir() { return test::data_dir() / "train-tiny"; }

struct GoldenBatch {
  std::vector<int32_t> tokens, targets;
  int64_t B = 0, T = 0;
};

// labels = input_ids, shifted inside the model: position t predicts t + 1,
// the last position of each row predicts nothing.
GoldenBatch golden_batch(const nlohmann::json& g) {
  GoldenBatch b;
  b.B = static_cast<int64_t>(g["batch"].size());
  b.T = static_cast<int64_t>(g["batch"][0].size());
  for (const auto& row : g["batch"])
    for (size_t t = 0; t < row.size(); ++t) {
      b.tokens.push_back(row[t].get<int32_t>());
      b.targets.push_back(t + 1 < row.size() ? row[t + 1].get<int32_t>() : -1);
    }
  return b;
}

std::unique_ptr<TrainModel> load_init(int threads) {
  auto m = std::make_unique<TrainModel>(ModelConfig::load(golden_dir() / "init"), threads);
  m->load(Checkpoint::open(golden_dir() / "init"));
  return m;
}

// ||a - ref|| / ||ref|| over one tensor.
double relative_l2(const float* a, const std::vector<double>& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (a[i] - ref[i]) * (a[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

void expect_tensors_close(const ParamSet& p, bool grads, const fs::path& file, double tol) {
  const SafetensorsFile ref(file);
  ASSERT_EQ(ref.tensors().size(), p.infos().size()) << file;
  for (const ParamInfo& info : p.infos()) {
    const auto it = ref.tensors().find(info.name);
    ASSERT_NE(it, ref.tensors().end()) << info.name << " missing from " << file;
    ASSERT_EQ(it->second.shape, info.shape) << info.name;
    const std::vector<double> r = test::doubles(it->second);
    const float* mine = grads ? p.grads.data() + info.offset : p.value(info.offset);
    EXPECT_LE(relative_l2(mine, r), tol) << info.name;
  }
}

TEST(TrainGolden, Step0LossAndGradientsOfEveryTensorMatchFloat64Reference) {
  const auto g = test::read_json(golden_dir() / "train-tiny.golden.json");
  const GoldenBatch b = golden_batch(g);
  auto m = load_init(2);
  const float scale = 1.0f / static_cast<float>(b.B * (b.T - 1));
  const double loss = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, scale, true);
  const double ref_loss = g["results"]["float64"]["loss"][0].get<double>();
  EXPECT_NEAR(loss, ref_loss, 1e-6 * ref_loss);
  expect_tensors_close(m->params(), true, golden_dir() / "train-tiny.step0-grads.safetensors", 1e-5);
  const double ref_norm = g["results"]["float64"]["grad_norm_before_clip"][0].get<double>();
  EXPECT_NEAR(grad_norm(m->params()), ref_norm, 1e-5 * ref_norm);
}

TEST(TrainGolden, TwentyAdamWStepsFollowTheFloat64LossCurveAndEndAtItsParameters) {
  const auto g = test::read_json(golden_dir() / "train-tiny.golden.json");
  const auto& hp = g["hyperparameters"];
  const GoldenBatch b = golden_batch(g);
  auto m = load_init(2);
  const AdamWConfig adam{hp["betas"][0].get<double>(), hp["betas"][1].get<double>(), hp["eps"].get<double>(),
                         hp["weight_decay"].get<double>()};
  AdamW opt(m->params().size());
  const auto& ref_loss = g["results"]["float64"]["loss"];
  const auto& ref_norm = g["results"]["float64"]["grad_norm_before_clip"];
  const float scale = 1.0f / static_cast<float>(b.B * (b.T - 1));
  for (int s = 0; s < hp["steps"].get<int>(); ++s) {
    m->params().zero_grads();
    const double loss = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, scale, true);
    const double norm = grad_norm(m->params());
    EXPECT_NEAR(loss, ref_loss[s].get<double>(), 1e-4 * ref_loss[s].get<double>()) << "step " << s;
    EXPECT_NEAR(norm, ref_norm[s].get<double>(), 1e-3 * ref_norm[s].get<double>()) << "step " << s;
    clip_grads(m->params(), norm, hp["grad_clip"].get<double>());
    opt.step(m->params(), hp["lr"].get<double>(), adam, m->pool());
  }
  expect_tensors_close(m->params(), false, golden_dir() / "train-tiny.final-params.safetensors", 1e-4);
}

TEST(TrainGolden, ResultsDoNotDependOnTheThreadCount) {
  const auto g = test::read_json(golden_dir() / "train-tiny.golden.json");
  const GoldenBatch b = golden_batch(g);
  std::vector<float> grads[2];
  double losses[2];
  for (int i = 0; i < 2; ++i) {
    auto m = load_init(i == 0 ? 1 : 3);
    losses[i] = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, 1.0f / 60, true);
    grads[i] = m->params().grads;
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(grads[0], grads[1]);
}

}  // namespace
}  // namespace gptneo::training
