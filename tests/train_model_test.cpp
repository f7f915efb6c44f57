// The training model as a whole: recomputation, LoRA gradients and the LoRA
// merge at load, bf16 operands, activation memory.
#include <cmath>

#include <gtest/gtest.h>

#include "gptneo/error.h"
#include "gptneo/train.h"
#include "io/checkpoint.h"
#include "test_support.h"
#include "train/gemm.h"
#include "train/lora.h"
#include "train/model.h"
#include "train/optimizer.h"

namespace gptneo::training {
namespace {

namespace fs = std::filesystem;

fs::path init_dir() { return test::data_dir() / "train-tiny" / "init"; }

std::unique_ptr<TrainModel> load_init() {
  auto m = std::make_unique<TrainModel>(ModelConfig::load(init_dir()), 2);
  m->load(Checkpoint::open(init_dir()));
  return m;
}

struct Batch {
  std::vector<int32_t> tokens, targets;
  int64_t B = 3, T = 12;
};

Batch random_batch(uint64_t seed) {
  Batch b;
  Rng rng(seed);
  for (int64_t i = 0; i < b.B * b.T; ++i) b.tokens.push_back(static_cast<int32_t>(rng.below(256)));
  for (int64_t i = 0; i < b.B * b.T; ++i) b.targets.push_back((i + 1) % b.T == 0 ? -1 : b.tokens[i + 1]);
  return b;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * double(a[i] - b[i]), n += double(b[i]) * b[i];
  return std::sqrt(d / std::max(n, 1e-30));
}

TEST(TrainModel, RecomputeGivesBitIdenticalLossAndGradients) {
  const Batch b = random_batch(1);
  auto m = load_init();
  const double l1 = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, 0.1f, true, false);
  const std::vector<float> g1 = m->params().grads;
  m->params().zero_grads();
  const double l2 = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, 0.1f, true, true);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(g1, m->params().grads);
  EXPECT_LT(m->activation_bytes(8, 32, true), m->activation_bytes(8, 32, false));
}

TEST(TrainModel, GradientsAccumulateOverMicroBatches) {
  // Two halves of a batch, each scaled by 1 / (all targets), add up to the whole.
  const Batch b = random_batch(2);
  auto m = load_init();
  const float scale = 1.0f / 33;
  const double whole = m->step(b.tokens.data(), b.targets.data(), b.B, b.T, scale, true);
  const std::vector<float> g = m->params().grads;
  m->params().zero_grads();
  double halves = m->step(b.tokens.data(), b.targets.data(), 1, b.T, scale, true);
  halves += m->step(b.tokens.data() + b.T, b.targets.data() + b.T, 2, b.T, scale, true);
  EXPECT_NEAR(halves, whole, 1e-6 * whole);
  EXPECT_LT(rel_l2(m->params().grads, g), 1e-5);
}

// W + scale · B · A for every adapted weight of `lora`, written into `full`.
void merge_into(const TrainModel& lora, TrainModel& full) {
  const LoraSpec& spec = lora.lora_spec();
  const double scale = spec.alpha / static_cast<double>(spec.rank);
  for (const ParamInfo& a : lora.adapters().infos()) {
    if (!a.name.ends_with(".lora_A.weight")) continue;
    const std::string module = a.name.substr(17, a.name.size() - 17 - 14);  // strip base_model.model. / .lora_A.weight
    const ParamInfo& b = lora.adapters().info("base_model.model." + module + ".lora_B.weight");
    const ParamInfo& w = full.params().info(module + ".weight");
    const int64_t out = w.shape[0], in = w.shape[1], r = spec.rank;
    float* W = full.params().value(w.offset);
    for (int64_t i = 0; i < out; ++i)
      for (int64_t j = 0; j < in; ++j) {
        double s = 0;
        for (int64_t k = 0; k < r; ++k) s += lora.adapters().value(b.offset)[i * r + k] * lora.adapters().value(a.offset)[k * in + j];
        W[i * in + j] += static_cast<float>(scale * s);
      }
  }
}

std::unique_ptr<TrainModel> lora_model(const std::vector<std::string>& targets) {
  auto m = load_init();
  LoraSpec spec;
  spec.rank = 3;
  spec.alpha = 6;
  spec.targets = targets;
  m->add_lora(spec, 5);
  // B starts at zero; make it non-zero so that every gradient path is exercised.
  Rng rng(9);
  for (const ParamInfo& p : m->adapters().infos())
    if (p.name.ends_with(".lora_B.weight"))
      for (size_t i = 0; i < p.numel; ++i) m->adapters().value(p.offset)[i] = static_cast<float>(rng.normal() * 0.05);
  return m;
}

TEST(TrainModel, LoraGradientsEqualTheChainRuleThroughTheMergedWeight) {
  // With W' = W + s·B·A: dL/dB = s · dL/dW' · Aᵀ and dL/dA = s · Bᵀ · dL/dW'.
  const Batch b = random_batch(3);
  auto lora = lora_model({"q", "k", "v", "out", "fc", "proj"});
  auto full = load_init();
  merge_into(*lora, *full);
  const double l_lora = lora->step(b.tokens.data(), b.targets.data(), b.B, b.T, 0.05f, true);
  const double l_full = full->step(b.tokens.data(), b.targets.data(), b.B, b.T, 0.05f, true);
  EXPECT_NEAR(l_lora, l_full, 1e-5 * l_full);
  for (const float g : lora->params().grads) ASSERT_EQ(g, 0.0f) << "the base weights are frozen";

  const double s = 2.0;
  const int64_t r = 3;
  for (const ParamInfo& a : lora->adapters().infos()) {
    if (!a.name.ends_with(".lora_A.weight")) continue;
    const std::string module = a.name.substr(17, a.name.size() - 17 - 14);
    const ParamInfo& bi = lora->adapters().info("base_model.model." + module + ".lora_B.weight");
    const ParamInfo& w = full->params().info(module + ".weight");
    const int64_t out = w.shape[0], in = w.shape[1];
    const float* dW = full->params().grads.data() + w.offset;
    const float* A = lora->adapters().value(a.offset);
    const float* B = lora->adapters().value(bi.offset);
    std::vector<float> dA(static_cast<size_t>(r * in)), dB(static_cast<size_t>(out * r));
    for (int64_t k = 0; k < r; ++k)
      for (int64_t j = 0; j < in; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < out; ++i) acc += B[i * r + k] * dW[i * in + j];
        dA[k * in + j] = static_cast<float>(s * acc);
      }
    for (int64_t i = 0; i < out; ++i)
      for (int64_t k = 0; k < r; ++k) {
        double acc = 0;
        for (int64_t j = 0; j < in; ++j) acc += dW[i * in + j] * A[k * in + j];
        dB[i * r + k] = static_cast<float>(s * acc);
      }
    const std::vector<float> gotA(lora->adapters().grads.begin() + a.offset,
                                  lora->adapters().grads.begin() + a.offset + a.numel);
    const std::vector<float> gotB(lora->adapters().grads.begin() + bi.offset,
                                  lora->adapters().grads.begin() + bi.offset + bi.numel);
    EXPECT_LT(rel_l2(gotA, dA), 1e-4) << a.name;
    EXPECT_LT(rel_l2(gotB, dB), 1e-4) << bi.name;
  }
}

// Mean next-token loss of the batch through the inference engine.
double inference_loss(Model& model, const Batch& b) {
  double sum = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < b.B; ++r) {
    KVCache cache = model.new_cache(b.T);
    SequenceChunk chunk{&cache, {b.tokens.data() + r * b.T, static_cast<size_t>(b.T)}, true, 0};
    const Logits logits = model.forward({&chunk, 1});
    for (int64_t t = 0; t + 1 < b.T; ++t) {
      const float* row = logits.row(t);
      double mx = row[0], z = 0;
      for (int64_t v = 0; v < logits.vocab; ++v) mx = std::max<double>(mx, row[v]);
      for (int64_t v = 0; v < logits.vocab; ++v) z += std::exp(row[v] - mx);
      sum += std::log(z) + mx - row[b.tokens[r * b.T + t + 1]];
      ++n;
    }
  }
  return sum / static_cast<double>(n);
}

TEST(TrainModel, LoraAdaptersSavedInPeftLayoutApplyAtLoadAndMerge) {
  const Batch b = random_batch(4);
  auto lora = lora_model({"q", "v", "fc"});
  const double trained = lora->step(b.tokens.data(), b.targets.data(), b.B, b.T, 1.0f / 33, false);
  test::TempDir tmp;
  save_lora_adapters(tmp / "adapter", *lora, init_dir().string());
  const auto cfg = test::read_json(tmp / "adapter" / "adapter_config.json");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 3);
  EXPECT_EQ(cfg["target_modules"], nlohmann::json({"q_proj", "v_proj", "c_fc"}));
  const SafetensorsFile f(tmp / "adapter" / "adapter_model.safetensors");
  EXPECT_TRUE(f.tensors().count("base_model.model.transformer.h.1.attn.attention.v_proj.lora_B.weight"));
  EXPECT_EQ(f.tensors().at("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight").shape,
            (std::vector<int64_t>{3, 32}));

  LoadOptions o;
  o.lora_dir = tmp / "adapter";
  auto adapted = Model::load(init_dir(), o);
  EXPECT_NEAR(inference_loss(*adapted, b), trained, 2e-5 * trained);
  auto base = Model::load(init_dir());
  EXPECT_GT(std::abs(inference_loss(*base, b) - trained), 1e-4) << "the adapters change the model";

  merge_lora(init_dir(), tmp / "adapter", tmp / "merged");
  auto merged = Model::load(tmp / "merged");
  EXPECT_NEAR(inference_loss(*merged, b), trained, 2e-5 * trained);

  // Reading them back into a training model gives the same adapters.
  auto again = load_init();
  again->add_lora(read_lora_spec(tmp / "adapter"), 77);
  load_lora_adapters(tmp / "adapter", *again);
  EXPECT_EQ(again->adapters().values, lora->adapters().values);
}

TEST(TrainModel, LoraErrorsNameTheProblem) {
  EXPECT_THROW(parse_lora_targets("q,attn"), Error);
  test::TempDir tmp;
  EXPECT_THROW(read_lora_spec(tmp.path()), Error);
  LoadOptions o;
  o.lora_dir = tmp.path();
  EXPECT_THROW(Model::load(init_dir(), o), Error);
}

TEST(TrainModel, Bf16OperandsFollowTheFloat32LossCurve) {
  const Batch b = random_batch(6);
  std::vector<double> curves[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    set_gemm_bf16_operands(bf16 == 1);
    auto m = load_init();
    AdamW opt(m->params().size());
    for (int s = 0; s < 15; ++s) {
      m->params().zero_grads();
      curves[bf16].push_back(m->step(b.tokens.data(), b.targets.data(), b.B, b.T, 1.0f / 33, true));
      clip_grads(m->params(), grad_norm(m->params()), 1.0);
      opt.step(m->params(), 1e-2, {}, m->pool());
    }
    set_gemm_bf16_operands(false);
  }
  EXPECT_NE(curves[0], curves[1]) << "bf16 rounding must change something";
  EXPECT_LT(curves[0].back(), 0.8 * curves[0].front()) << "the run learns";
  for (size_t s = 0; s < curves[0].size(); ++s) EXPECT_NEAR(curves[1][s], curves[0][s], 0.02 * curves[0][s]) << s;
}

TEST(TrainModel, RejectsOtherArchitecturesAndBadTokens) {
  ModelConfig c = ModelConfig::load(init_dir());
  c.model_type = "gptj";
  EXPECT_THROW(TrainModel(c, 1), Error);
  auto m = load_init();
  Batch b = random_batch(7);
  b.tokens[5] = 256;
  EXPECT_THROW(m->step(b.tokens.data(), b.targets.data(), b.B, b.T, 1.0f, true), Error);
}

}  // namespace
}  // namespace gptneo::training
