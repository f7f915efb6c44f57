// Row-wise and element-wise primitives: LayerNorm, activations, softmax, and
// the small vector operations attention is built from. The vectorised
// bodies are in the kernel sets (kernel_set.h); this file routes to them.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"

namespace gptneo::kernels {

void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta, float eps,
                float* y) {
  const KernelSet& ks = active();
  for (int64_t i = 0; i < m; ++i) ks.layer_norm_row(x + i * d, d, gamma, beta, eps, y + i * d);
}

Activation activation_from_name(const std::string& name) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::GeluNew;
  if (name == "gelu_fast") return Activation::GeluFast;
  if (name == "gelu") return Activation::Gelu;
  if (name == "relu") return Activation::Relu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  throw Error(fmt::format("unsupported activation_function \"{}\" (supported: gelu_new, "
                          "gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)",
                          name));
}

void activate(Activation a, float* x, int64_t n) {
  constexpr float kInvSqrt2 = 0.7071067811865476f;
  switch (a) {
    case Activation::GeluNew:  // the tanh approximation GPT-Neo and GPT-J use
    case Activation::GeluFast:
      return active().gelu_tanh(x, n);
    case Activation::Gelu:
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
      return;
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f);
      return;
    case Activation::Silu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
      return;
  }
}

void softmax(float* x, int64_t n) { active().softmax(x, n); }
float dot(const float* a, const float* b, int64_t n) { return active().dot(a, b, n); }
void axpy(float a, const float* x, float* y, int64_t n) { active().axpy(a, x, y, n); }
void add(const float* x, float* y, int64_t n) { active().add(x, y, n); }

void to_f16(const float* x, int64_t n, uint16_t* out) { active().to_f16(x, n, out); }

void attention_values(const float* p, int64_t ldp, int64_t m, const float* values, int64_t stride, int64_t n,
                      int64_t d, float* out, int64_t ldo) {
  active().attention_values(p, ldp, m, values, stride, n, d, out, ldo);
}

void attention_scores_tiled(const float* q, int64_t ldq, int64_t m, const float* tiles, int64_t first, int64_t n,
                            int64_t d, float scale, float* scores, int64_t lds) {
  active().attention_scores_tiled(q, ldq, m, tiles, first, n, d, scale, scores, lds);
}

void attention_values(const float* p, int64_t ldp, int64_t m, const uint16_t* values, int64_t stride, int64_t n,
                      int64_t d, float* out, int64_t ldo) {
  active().attention_values_f16(p, ldp, m, values, stride, n, d, out, ldo);
}

void attention_scores_tiled(const float* q, int64_t ldq, int64_t m, const uint16_t* tiles, int64_t first, int64_t n,
                            int64_t d, float scale, float* scores, int64_t lds) {
  active().attention_scores_tiled_f16(q, ldq, m, tiles, first, n, d, scale, scores, lds);
}

}  // namespace gptneo::kernels
