// gptneo::benchmark_training (include/gptneo/train.h): the time of whole
// training steps (forward, backward, AdamW) at a model's shapes.
#include <algorithm>
#include <chrono>

#include "gptneo/train.h"
#include "kernels/kernels.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace gptneo {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
}  // namespace

TrainBenchResult benchmark_training(const TrainBenchOptions& o) {
  const ModelConfig& c = o.config;
  training::TrainModel model(c, o.threads);
  model.init_random(1);
  training::Rng rng(7);
  const int64_t M = o.batch * o.seq;
  std::vector<int32_t> tokens(static_cast<size_t>(M)), targets(static_cast<size_t>(M));
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
  for (int64_t i = 0; i < M; ++i) targets[i] = (i + 1) % o.seq == 0 ? -1 : tokens[i + 1];

  training::AdamW opt(model.params().size());
  const float scale = 1.0f / static_cast<float>(M);
  auto train_step = [&] {
    model.params().zero_grads();
    model.step(tokens.data(), targets.data(), o.batch, o.seq, scale, true, o.recompute);
    training::clip_grads(model.params(), training::grad_norm(model.params()), 1.0);
    opt.step(model.params(), 1e-4, {}, model.pool());
  };
  train_step();  // warm-up: buffers, page faults
  std::vector<double> steps, forwards;
  for (int64_t i = 0; i < std::max<int64_t>(1, o.steps); ++i) {
    const auto t = Clock::now();
    train_step();
    steps.push_back(since(t));
  }
  for (int64_t i = 0; i < std::max<int64_t>(1, o.steps / 2); ++i) {
    const auto t = Clock::now();
    model.step(tokens.data(), targets.data(), o.batch, o.seq, scale, false);
    forwards.push_back(since(t));
  }

  TrainBenchResult r;
  r.step_s = median(steps);
  r.forward_s = median(forwards);
  r.tokens_per_s = static_cast<double>(M) / r.step_s;
  const double H = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size),
               L = static_cast<double>(c.num_layers), V = static_cast<double>(c.vocab_size);
  // 2 FLOPs per multiply-add; forward 1×, backward 2× (input and weight
  // gradients). The attention products run over all T × T pairs.
  const double matmul_weights = L * (4 * H * H + 2 * H * I) + V * H;
  r.flops_per_step = 6 * static_cast<double>(M) * matmul_weights +
                     12 * L * static_cast<double>(o.batch) * static_cast<double>(o.seq * o.seq) * H;
  r.achieved_flops = r.flops_per_step / r.step_s;
  r.activation_bytes = model.activation_bytes(o.batch, o.seq, o.recompute);
  r.parameters = static_cast<int64_t>(model.params().size());
  if (o.measure_peak) r.fma_peak_flops = kernels::measure_fma_peak(model.pool());
  return r;
}

}  // namespace gptneo
