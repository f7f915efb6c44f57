// The numerical primitives the models are written in.
//
// Model code calls only these functions; how they are computed (which ISA,
// how many threads, which weight format) is decided here. Each primitive has
// a plain scalar reference in kernels/reference.h against which the fast
// versions are tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "gptneo/weight_format.h"

namespace gptneo {

// A weight matrix of `rows` outputs by `cols` inputs, row-major (the layout
// of torch.nn.Linear.weight), in one of the weight formats.
struct Matrix {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  std::shared_ptr<const void> storage;  // owns `data`

  const float* f32() const { return static_cast<const float*>(data); }
  size_t bytes() const;
  // A float32 copy of row r (for embedding lookups).
  void row_f32(int64_t r, float* out) const;
};

// Makes an owned float32 matrix (contents uninitialised).
Matrix make_f32_matrix(int64_t rows, int64_t cols);
// Converts a float32 matrix to `format` (a copy).
Matrix convert_matrix(const Matrix& m, WeightFormat format);

namespace kernels {

// y[m, w.rows] = x[m, w.cols] · wᵀ (+ bias[w.rows] when bias != nullptr).
// Split over threads by output columns (decode) or rows and columns (prefill).
void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y, ThreadPool& pool);

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta for each of the
// m rows of length d (biased variance, as torch.nn.LayerNorm). y may equal x.
void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y);

// Activation functions of the MLP, in place over n values.
enum class Activation { GeluNew, Gelu, GeluFast, Relu, Silu };
// Parses a Hugging Face `activation_function` name; throws gptneo::Error if unknown.
Activation activation_from_name(const std::string& name);
void activate(Activation a, float* x, int64_t n);

// In-place softmax of n values, computed in float32 with the maximum
// subtracted first; entries equal to -inf become exactly 0.
void softmax(float* x, int64_t n);

// Sum of a[i] * b[i].
float dot(const float* a, const float* b, int64_t n);
// y[i] += a * x[i].
void axpy(float a, const float* x, float* y, int64_t n);
// y[i] += x[i].
void add(const float* x, float* y, int64_t n);

// The ISA the kernels use ("scalar", "avx2", "avx512").
std::string isa_name();

}  // namespace kernels
}  // namespace gptneo
