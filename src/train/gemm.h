// The one matrix product training is written in.
//
//   C[M, N] (+)= op(A)[M, K] · op(B)[K, N]
//
// with every operand row-major at its own row stride, and op(X) = X or Xᵀ.
// The forward pass (y = x·Wᵀ), both backward products (dx = dy·W and
// dW += dyᵀ·x), the attention products and the tied output head are all
// calls of it with different transposes, so there is one fast kernel to get
// right instead of many.
//
// float runs a packed, cache-blocked kernel (AVX2/FMA where the CPU has it,
// chosen at run time; portable C++ otherwise); double runs a plain blocked
// loop and exists for the finite-difference tests.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace gptneo::training {

enum class Trans : bool { No = false, Yes = true };

// The operands: op(A) is M×K (A itself is M×K with stride lda, or K×M when
// transposed), op(B) is K×N (B is K×N, or N×K when transposed). C is M×N
// with stride ldc. accumulate: C += product, else C = product. `pool` splits
// the work over its threads (nullptr: the calling thread only, for products
// run inside another parallel loop).
struct GemmArgs {
  Trans ta = Trans::No, tb = Trans::No;
  int64_t M = 0, N = 0, K = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  bool accumulate = false;
};

void gemm(const GemmArgs& g, const float* A, const float* B, float* C, ThreadPool* pool);
void gemm(const GemmArgs& g, const double* A, const double* B, double* C, ThreadPool* pool);

// Rounds every operand of the float products to bfloat16 before multiplying
// (accumulation stays float32): what a bf16 matrix unit computes. This CPU
// path emulates it, for checking that training converges the same; it is
// not faster. Process-wide; off by default.
void set_gemm_bf16_operands(bool on);
bool gemm_bf16_operands();

// Convenience forms of the three products of a linear layer y = x·Wᵀ with
// x: [m, in], W: [out, in], y/dy: [m, out], all densely packed.
template <class T>
void linear_forward(const T* x, int64_t m, int64_t in, const T* w, int64_t out, T* y, ThreadPool* pool) {
  gemm(GemmArgs{Trans::No, Trans::Yes, m, out, in, in, in, out, false}, x, w, y, pool);
}
// dx (+)= dy · W
template <class T>
void linear_backward_input(const T* dy, int64_t m, int64_t out, const T* w, int64_t in, T* dx, bool accumulate,
                           ThreadPool* pool) {
  gemm(GemmArgs{Trans::No, Trans::No, m, in, out, out, in, in, accumulate}, dy, w, dx, pool);
}
// dW += dyᵀ · x
template <class T>
void linear_backward_weight(const T* dy, int64_t m, int64_t out, const T* x, int64_t in, T* dw, ThreadPool* pool) {
  gemm(GemmArgs{Trans::Yes, Trans::No, out, in, m, out, in, in, true}, dy, x, dw, pool);
}

namespace detail {
// The f32 micro-kernel interface the ISA-specific files implement: C tile
// [mr × nr] (+)= sum over k < kc of a[k * MR + i] * b[k * NR + j], with
// packed panels of MR = 6 rows and NR = 16 columns.
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;
void micro_kernel_6x16_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                            int64_t nr, bool accumulate);
}  // namespace detail

}  // namespace gptneo::training
