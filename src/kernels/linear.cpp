// y = x · wᵀ + b, the product every projection of the model is made of.
//
// Two ways, both split over threads by blocks of weight rows (output
// columns), so each thread streams its own share of the weights once:
//  - few rows of x (decoding): the weights are read in their own format and
//    widened in registers (gemm_direct); this is bound by memory bandwidth.
//  - many rows (prompts): blocks of weights are widened once into float32
//    panels that stay in cache and are reused by every row of x
//    (pack_panel + gemm_panel); this is bound by arithmetic.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/kernel_set.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {

namespace {

// From this many rows of x on, packing the weights pays for itself.
constexpr int64_t kPackedMinRows = 8;
// Columns of x and rows of a panel handled at a time: a panel of depth
// kDepth stays in L1, and kRowBlock × kDepth floats of x in L2.
constexpr int64_t kDepth = 256;
constexpr int64_t kRowBlock = 96;

WeightRows rows_of(const Matrix& w, int64_t j0, int64_t j1) {
  return WeightRows{w.format, w.row(j0), w.row_bytes(), j1 - j0, w.cols};
}

void add_bias(const float* bias, int64_t m, int64_t n, int64_t j0, int64_t j1, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = j0; j < j1; ++j) y[i * n + j] += bias[j];
}

void linear_packed(const KernelSet& ks, const float* x, int64_t m, const Matrix& w, float* y, int64_t j0,
                   int64_t j1) {
  thread_local std::vector<float> panel;
  const int64_t pw = ks.panel_width;
  panel.resize(static_cast<size_t>(pw * kDepth));
  const int64_t K = w.cols, N = w.rows;
  for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const int64_t mi = std::min(kRowBlock, m - i0);
    for (int64_t jb = j0; jb < j1; jb += pw) {
      const int64_t n = std::min(pw, j1 - jb);
      const WeightRows wr = rows_of(w, jb, jb + n);
      for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
        const int64_t kc = std::min(kDepth, K - k0);
        ks.pack_panel(wr, k0, kc, panel.data());
        ks.gemm_panel(x + i0 * K + k0, K, mi, panel.data(), kc, n, y + i0 * N + jb, N, k0 > 0);
      }
    }
  }
}

}  // namespace

void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y, ThreadPool& pool) {
  const KernelSet& ks = active();
  if (m >= kPackedMinRows) {
    pool.parallel_for(w.rows, ks.panel_width, [&](int64_t j0, int64_t j1) {
      linear_packed(ks, x, m, w, y, j0, j1);
      if (bias) add_bias(bias, m, w.rows, j0, j1, y);
    });
    return;
  }
  // The direct kernels read quantized rows in whole blocks of 32: a row of
  // x whose length is not a multiple of 32 is zero-padded (tiny models only).
  const float* xs = x;
  int64_t ldx = w.cols;
  thread_local std::vector<float> padded;
  if (is_quantized(w.format) && w.cols % quant::kBlock != 0) {
    ldx = quant::blocks_per_row(w.cols) * quant::kBlock;
    padded.assign(static_cast<size_t>(m * ldx), 0.0f);
    for (int64_t i = 0; i < m; ++i) std::memcpy(padded.data() + i * ldx, x + i * w.cols, w.cols * sizeof(float));
    xs = padded.data();
  }
  pool.parallel_for(w.rows, 16, [&](int64_t j0, int64_t j1) {
    ks.gemm_direct(xs, ldx, m, rows_of(w, j0, j1), y + j0, w.rows);
    if (bias) add_bias(bias, m, w.rows, j0, j1, y);
  });
}

}  // namespace gptneo::kernels
