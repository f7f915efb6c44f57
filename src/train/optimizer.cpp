#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::training {

void AdamW::step(ParamSet& p, double lr, const AdamWConfig& c, ThreadPool& pool) {
  if (m.size() != p.size()) m.assign(p.size(), 0.0f), v.assign(p.size(), 0.0f);
  ++t;
  // The scalars as torch computes them (in double, then used in float ops).
  const double bias1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
  const double bias2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
  const auto step_size = static_cast<float>(lr / bias1);
  const auto bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  const auto decay = static_cast<float>(1.0 - lr * c.weight_decay);
  const auto one_minus_b1 = static_cast<float>(1.0 - c.beta1);
  const auto b2 = static_cast<float>(c.beta2), one_minus_b2 = static_cast<float>(1.0 - c.beta2);
  const auto eps = static_cast<float>(c.eps);
  for (const ParamInfo& info : p.infos()) {
    float* w = p.value(info.offset);
    const float* g = p.grads.data() + info.offset;
    float* mm = m.data() + info.offset;
    float* vv = v.data() + info.offset;
    const bool wd = info.decay && c.weight_decay != 0;
    pool.parallel_for(static_cast<int64_t>(info.numel), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        if (wd) w[i] *= decay;                     // param.mul_(1 - lr * wd)
        mm[i] += one_minus_b1 * (g[i] - mm[i]);    // exp_avg.lerp_(grad, 1 - beta1)
        vv[i] = vv[i] * b2 + one_minus_b2 * g[i] * g[i];  // exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
        const float denom = std::sqrt(vv[i]) / bias2_sqrt + eps;
        w[i] += -step_size * (mm[i] / denom);      // param.addcdiv_(exp_avg, denom, -step_size)
      }
    });
  }
}

double grad_norm(const ParamSet& p) {
  double s = 0;
  for (const float g : p.grads) s += static_cast<double>(g) * g;
  return std::sqrt(s);
}

double clip_grads(ParamSet& p, double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  const double coef = std::min(1.0, max_norm / (norm + 1e-6));
  if (coef < 1.0) {
    const auto f = static_cast<float>(coef);
    for (float& g : p.grads) g *= f;
  }
  return coef;
}

double Schedule::at(int64_t s) const {
  if (warmup > 0 && s < warmup) return lr * static_cast<double>(s + 1) / static_cast<double>(warmup);
  if (kind == Kind::Constant) return lr;
  const int64_t decay_steps = std::max<int64_t>(1, total - warmup);
  const double progress = std::clamp(static_cast<double>(s - warmup) / static_cast<double>(decay_steps), 0.0, 1.0);
  if (kind == Kind::Linear) return lr + (min_lr - lr) * progress;
  return min_lr + 0.5 * (1.0 + std::cos(M_PI * progress)) * (lr - min_lr);
}

Schedule::Kind Schedule::parse(const std::string& name) {
  if (name == "cosine") return Kind::Cosine;
  if (name == "linear") return Kind::Linear;
  if (name == "constant") return Kind::Constant;
  throw Error(fmt::format("unknown --schedule \"{}\" (expected cosine, linear or constant)", name));
}

}  // namespace gptneo::training
