// Plain scalar versions of the primitives, written for clarity: the ground
// truth the optimised kernels are tested against.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace gptneo::reference {

void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y);
void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y);
void activate(kernels::Activation a, float* x, int64_t n);
void softmax(float* x, int64_t n);

}  // namespace gptneo::reference
