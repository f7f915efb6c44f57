// y = x · wᵀ + b, the product every projection of the model is made of.
//
// The portable implementation: register tiles of 4 input rows × 2 weight rows
// with 8 independent partial sums each, which compilers turn into SIMD code
// for whatever the target ISA is. Work is split over threads by blocks of
// weight rows, so each thread streams its own part of the weights once.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace gptneo::kernels {

namespace {

constexpr int kLanes = 8;

// acc[r][c] = dot(x row r, w row c) for an MR × NR tile, over k in [0, K).
template <int MR, int NR>
inline void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* out,
                 int64_t ldo) {
  float acc[MR][NR][kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes)
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c)
        for (int l = 0; l < kLanes; ++l) acc[r][c][l] += x[r * ldx + k + l] * w[c * ldw + k + l];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      const float* a = acc[r][c];
      float s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
      for (int64_t kk = k; kk < K; ++kk) s += x[r * ldx + kk] * w[c * ldw + kk];
      out[r * ldo + c] = s;
    }
}

// Rows [j0, j1) of the weights against all m rows of x; `w` points at row j0
// of a float32 matrix with K columns, y has N columns.
void linear_f32_block(const float* x, int64_t m, const float* w, int64_t K, int64_t N, const float* bias,
                      float* y, int64_t j0, int64_t j1) {
  constexpr int MR = 4, NR = 2;
  int64_t j = j0;
  for (; j + NR <= j1; j += NR) {
    int64_t i = 0;
    for (; i + MR <= m; i += MR) tile<MR, NR>(x + i * K, K, w + (j - j0) * K, K, K, y + i * N + j, N);
    for (; i < m; ++i) tile<1, NR>(x + i * K, K, w + (j - j0) * K, K, K, y + i * N + j, N);
  }
  for (; j < j1; ++j) {
    int64_t i = 0;
    for (; i + MR <= m; i += MR) tile<MR, 1>(x + i * K, K, w + (j - j0) * K, K, K, y + i * N + j, N);
    for (; i < m; ++i) tile<1, 1>(x + i * K, K, w + (j - j0) * K, K, K, y + i * N + j, N);
  }
  if (bias)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t jj = j0; jj < j1; ++jj) y[i * N + jj] += bias[jj];
}

// 16-bit weights: each block of rows is widened to float32 once into a
// per-thread buffer, then multiplied as above.
void linear_16bit_block(const float* x, int64_t m, const Matrix& w, const float* bias, float* y,
                        int64_t j0, int64_t j1) {
  constexpr int64_t kRowsPerChunk = 16;
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(kRowsPerChunk * w.cols));
  for (int64_t j = j0; j < j1; j += kRowsPerChunk) {
    const int64_t rows = std::min(kRowsPerChunk, j1 - j);
    for (int64_t r = 0; r < rows; ++r) w.row_f32(j + r, buf.data() + r * w.cols);
    linear_f32_block(x, m, buf.data(), w.cols, w.rows, bias, y, j, j + rows);
  }
}

}  // namespace

void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y, ThreadPool& pool) {
  // Blocks of 16 weight rows keep each thread's slice aligned to tiles.
  pool.parallel_for(w.rows, 16, [&](int64_t j0, int64_t j1) {
    if (w.format == WeightFormat::F32)
      linear_f32_block(x, m, w.f32() + j0 * w.cols, w.cols, w.rows, bias, y, j0, j1);
    else
      linear_16bit_block(x, m, w, bias, y, j0, j1);
  });
}

}  // namespace gptneo::kernels
