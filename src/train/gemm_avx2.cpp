// The AVX2/FMA micro-kernel of the training matrix product: a 6 × 16 tile of
// C held in 12 ymm accumulators, fed by one broadcast of A and two loads of B
// per row and step (15 of the 16 registers). Compiled with -mavx2 -mfma
// (the _avx2.cpp suffix) and only called after the run-time CPU check.
#include <immintrin.h>

#include "train/gemm.h"

namespace gptneo::training::detail {

void micro_kernel_6x16_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
                            int64_t nr, bool accumulate) {
  // The C tile is touched once per call and is rarely in cache: ask for it
  // now, so that it arrives while the k loop runs.
  for (int64_t i = 0; i < mr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == kMR && nr == kNR) {
    for (int64_t i = 0; i < kMR; ++i) {
      float* ci = c + i * ldc;
      __m256 lo = acc[i][0], hi = acc[i][1];
      if (accumulate) lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
      _mm256_storeu_ps(ci, lo);
      _mm256_storeu_ps(ci + 8, hi);
    }
    return;
  }
  // An edge tile: only mr × nr of it lies inside C.
  alignas(32) float tile[kMR][kNR];
  for (int64_t i = 0; i < kMR; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (int64_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    if (accumulate)
      for (int64_t j = 0; j < nr; ++j) ci[j] += tile[i][j];
    else
      for (int64_t j = 0; j < nr; ++j) ci[j] = tile[i][j];
  }
}

}  // namespace gptneo::training::detail
