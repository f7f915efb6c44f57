// AdamW (torch.optim.AdamW's arithmetic, step for step), global gradient-
// norm clipping (torch.nn.utils.clip_grad_norm_) and the learning-rate
// schedule: linear warm-up, then constant, linear or cosine decay to a floor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "train/params.h"

namespace gptneo::training {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;  // decoupled; only on ParamInfo::decay tensors
};

class AdamW {
 public:
  AdamW() = default;
  explicit AdamW(size_t n) : m(n, 0.0f), v(n, 0.0f) {}
  // One update of every parameter of `p` from p.grads with learning rate lr.
  void step(ParamSet& p, double lr, const AdamWConfig& c, ThreadPool& pool);

  int64_t t = 0;        // updates done (bias correction)
  std::vector<float> m;  // exp_avg
  std::vector<float> v;  // exp_avg_sq
};

// The L2 norm of all gradients together (accumulated in double).
double grad_norm(const ParamSet& p);
// Scales the gradients as clip_grad_norm_(max_norm) does, given their norm:
// by max_norm / (norm + 1e-6) when that is below 1. Returns the factor.
double clip_grads(ParamSet& p, double norm, double max_norm);

struct Schedule {
  enum class Kind { Constant, Linear, Cosine };
  Kind kind = Kind::Cosine;
  double lr = 3e-4;
  double min_lr = 3e-5;  // the floor the decay ends at
  int64_t warmup = 0;    // steps of linear warm-up from lr / warmup
  int64_t total = 1;     // steps of the whole run

  // Learning rate of step `s` (0-based).
  double at(int64_t s) const;
  static Kind parse(const std::string& name);
};

}  // namespace gptneo::training
