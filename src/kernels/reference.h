// Plain scalar versions of the primitives, written for clarity: the ground
// truth the optimised kernels are tested against.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace gptneo::reference {

// y = x · wᵀ + b in double precision with the weights' exact values.
void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y);
// The same for q8 / q4 weights with each x row quantized to int8 blocks first
// (quant::quantize_row_act): what kernels::linear computes where
// kernels::int8_products(m).
void linear_int8(const float* x, int64_t m, const Matrix& w, const float* bias, float* y);
void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y);
void activate(kernels::Activation a, float* x, int64_t n);
void softmax(float* x, int64_t n);

}  // namespace gptneo::reference
