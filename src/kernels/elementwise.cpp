// Row-wise and element-wise primitives: LayerNorm, activations, softmax, and
// the small vector operations attention is built from.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "kernels/kernels.h"

namespace gptneo::kernels {

void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * d;
    float* yi = y + i * d;
    // Two passes (mean, then centred variance) as PyTorch does: one-pass
    // E[x²] - E[x]² loses precision when the mean is large.
    float mean = 0;
    for (int64_t k = 0; k < d; ++k) mean += xi[k];
    mean /= static_cast<float>(d);
    float var = 0;
    for (int64_t k = 0; k < d; ++k) {
      const float c = xi[k] - mean;
      var += c * c;
    }
    var /= static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t k = 0; k < d; ++k) yi[k] = (xi[k] - mean) * inv * gamma[k] + beta[k];
  }
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
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  constexpr float kInvSqrt2 = 0.7071067811865476f;
  switch (a) {
    case Activation::GeluNew:  // the tanh approximation GPT-Neo and GPT-J use
    case Activation::GeluFast:
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
      }
      return;
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

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float dot(const float* a, const float* b, int64_t n) {
  // Eight partial sums let the compiler vectorise without -ffast-math.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

std::string isa_name() { return "portable"; }

}  // namespace gptneo::kernels
