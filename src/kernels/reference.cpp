#include "kernels/reference.h"

#include "kernels/quant_blocks.h"

#include <cmath>
#include <limits>
#include <vector>

namespace gptneo::reference {

// Each block's integer dot product, scaled (quant::dot_block_act).
void linear_int8(const float* x, int64_t m, const Matrix& w, const float* bias, float* y) {
  const int64_t nb = quant::blocks_per_row(w.cols);
  const size_t bb = quant::block_bytes(w.format);
  std::vector<quant::BlockAct> xq(static_cast<size_t>(nb));
  for (int64_t i = 0; i < m; ++i) {
    quant::quantize_row_act(x + i * w.cols, w.cols, xq.data());
    for (int64_t j = 0; j < w.rows; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t b = 0; b < nb; ++b) acc += quant::dot_block_act(w.format, w.row(j) + b * bb, xq[b]);
      y[i * w.rows + j] = static_cast<float>(acc);
    }
  }
}

void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t j = 0; j < w.rows; ++j) {
    w.row_f32(j, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t k = 0; k < w.cols; ++k) acc += double(x[i * w.cols + k]) * row[k];
      y[i * w.rows + j] = static_cast<float>(acc);
    }
  }
}

void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * d;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < d; ++k) mean += xi[k];
    mean /= d;
    for (int64_t k = 0; k < d; ++k) var += (xi[k] - mean) * (xi[k] - mean);
    var /= d;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t k = 0; k < d; ++k) y[i * d + k] = float((xi[k] - mean) * inv * gamma[k] + beta[k]);
  }
}

void activate(kernels::Activation a, float* x, int64_t n) {
  using kernels::Activation;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    double r = 0;
    switch (a) {
      case Activation::GeluNew:
      case Activation::GeluFast:
        r = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        break;
      case Activation::Gelu:
        r = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        break;
      case Activation::Relu:
        r = v > 0 ? v : 0;
        break;
      case Activation::Silu:
        r = v / (1.0 + std::exp(-v));
        break;
    }
    x[i] = static_cast<float>(r);
  }
}

void softmax(float* x, int64_t n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max<double>(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(double(x[i]) - mx) / sum);
}

}  // namespace gptneo::reference
