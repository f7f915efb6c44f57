// y = x · wᵀ + b, the product every projection of the model is made of.
//
// Three ways, all split over threads by blocks of weight rows (output
// columns), so each thread streams its own share of the weights once:
//  - float weights, few rows of x (decoding): the weights are read in their
//    own format and widened in registers (gemm_direct); bound by bandwidth.
//  - q8 / q4 weights, few rows of x (decoding, small batches), or any number
//    with AVX512-VNNI (int8_products): each row of x is quantized to int8
//    blocks and multiplied with integer dot products (gemm_quant), a few
//    instructions per 32 weights; bound by bandwidth with few rows. Each row
//    gets the same bits whatever the number of rows taken this way.
//  - many rows (prompts), the AVX-512 set with float32 weights, or bf16
//    weights on a CPU with bf16 dot products (AVX512-BF16): x is packed in
//    groups of 16 rows (bf16: rounded to bf16, two columns per unit) and
//    each weight is broadcast from its own row (gemm_f32_rows /
//    gemm_bf16_rows); bound by arithmetic, bf16 at twice the float32 rate.
//  - many rows otherwise (other formats, other sets): blocks of weights are
//    widened once into float32 panels that stay in cache and are reused by
//    every row of x (pack_panel + gemm_panel); bound by arithmetic, where
//    float FMAs beat AVX2's integer products.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {

namespace {

// Columns of x and rows of a panel handled at a time: a panel of depth
// kDepth stays in L1, and kRowBlock × kDepth floats of x in L2 (kRowBlock is
// a multiple of every kernel set's panel_rows: 4, 6, 12).
constexpr int64_t kDepth = 256;
constexpr int64_t kRowBlock = 96;
// Quantized activations multiplied with a thread's weights at a time (fits L2).
constexpr int64_t kActChunkBytes = 192 * 1024;
// From this many values on, activation rows are quantized on all threads.
constexpr int64_t kParallelQuantizeValues = 1 << 16;

WeightRows rows_of(const Matrix& w, int64_t j0, int64_t j1) {
  return WeightRows{w.format, w.row(j0), w.row_bytes(), j1 - j0, w.cols, w.layout};
}

void add_bias(const float* bias, int64_t m, int64_t n, int64_t j0, int64_t j1, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = j0; j < j1; ++j) y[i * n + j] += bias[j];
}

// x in the layout gemm_panel reads: for each depth block of kDepth columns
// (at tiles · mr · k0 floats), tiles of mr rows (the last zero-padded),
// column by column.
void pack_rows(const float* x, int64_t m, int64_t K, int64_t mr, float* xp, ThreadPool& pool) {
  const int64_t tiles = (m + mr - 1) / mr;
  pool.parallel_for(tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
      const int64_t kc = std::min(kDepth, K - k0);
      for (int64_t t = t0; t < t1; ++t) {
        float* tile = xp + tiles * mr * k0 + t * kc * mr;
        for (int64_t r = 0; r < mr; ++r) {
          const int64_t i = t * mr + r;
          for (int64_t k = 0; k < kc; ++k) tile[k * mr + r] = i < m ? x[i * K + k0 + k] : 0.0f;
        }
      }
    }
  });
}

// Each panel is packed once and multiplied with every row of x. Depth
// blocks are the outer loop, so the block of packed x they read (m × kDepth
// columns) stays in L2 while the thread's panels pass; y is summed over them
// in order of k.
void linear_packed(const KernelSet& ks, const float* xp, int64_t m, const Matrix& w, float* y, int64_t j0,
                   int64_t j1) {
  thread_local std::vector<float> panel;
  const int64_t pw = ks.panel_width, mr = ks.panel_rows, tiles = (m + mr - 1) / mr;
  panel.resize(static_cast<size_t>(pw * kDepth));
  const int64_t K = w.cols, N = w.rows;
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    const float* block = xp + tiles * mr * k0;
    for (int64_t jb = j0; jb < j1; jb += pw) {
      const int64_t n = std::min(pw, j1 - jb);
      ks.pack_panel(rows_of(w, jb, jb + n), k0, kc, panel.data());
      for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
        const int64_t mi = std::min(kRowBlock, m - i0);
        ks.gemm_panel(block + (i0 / mr) * kc * mr, mi, panel.data(), kc, n, y + i0 * N + jb, N, k0 > 0);
      }
    }
  }
}

void linear_panels(const KernelSet& ks, const float* x, int64_t m, const Matrix& w, const float* bias, float* y,
                   ThreadPool& pool) {
  // (The workers get a pointer: in their code the name `packed` would be
  // their own thread_local.)
  thread_local std::vector<float> packed;
  const int64_t mr = ks.panel_rows;
  packed.resize(static_cast<size_t>((m + mr - 1) / mr * mr * w.cols));
  float* xp = packed.data();
  pack_rows(x, m, w.cols, mr, xp, pool);
  pool.parallel_for(w.rows, ks.panel_width, [&](int64_t j0, int64_t j1) {
    linear_packed(ks, xp, m, w, y, j0, j1);
    if (bias) add_bias(bias, m, w.rows, j0, j1, y);
  });
}

void linear_quantized(const KernelSet& ks, const float* x, int64_t m, const Matrix& w, const float* bias, float* y,
                      ThreadPool& pool) {
  const int64_t K = w.cols, N = w.rows, nb = quant::blocks_per_row(K);
  thread_local std::vector<quant::BlockAct> xq;
  xq.resize(static_cast<size_t>(m * nb));
  quant::BlockAct* xqp = xq.data();
  // Where the kernels rearrange x for their tiles, it is done here once, as
  // each row is quantized, not once per chunk of weight rows (`linear`, 2
  // threads: 3-5 % at 8 and 128 rows; end to end within noise, 125M q8
  // batch 8 +1 % in 4 of 5 paired runs).
  thread_local std::vector<CacheLine> packed;
  if (ks.pack_act) packed.resize((ks.packed_act_bytes(m, K) + sizeof(CacheLine) - 1) / sizeof(CacheLine));
  CacheLine* xpk = packed.data();
  const bool q4 = w.format == WeightFormat::Q4;
  auto quantize_rows = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) ks.quantize_act(x + i * K, K, xqp + i * nb);
    if (ks.pack_act) ks.pack_act(xqp, nb, m, i0, i1, K, q4, xpk);
  };
  if (m * K >= kParallelQuantizeValues)
    pool.parallel_for(m, 1, quantize_rows);
  else
    quantize_rows(0, m);
  // Activation rows in chunks that stay in L2 while a thread's weight rows
  // are multiplied with them.
  // (Whole tiles of 8 rows: 21-row chunks of 8192 columns left tiles of 4
  // and 1 row, which share each weight block among fewer rows.)
  const int64_t fit = kActChunkBytes / (nb * static_cast<int64_t>(sizeof(quant::BlockAct)));
  const int64_t chunk = std::max<int64_t>(8, fit / 8 * 8);
  pool.parallel_for(N, 16, [&](int64_t j0, int64_t j1) {
    const WeightRows wr = rows_of(w, j0, j1);
    for (int64_t i0 = 0; i0 < m; i0 += chunk) {
      const int64_t rows = std::min(chunk, m - i0);
      if (ks.pack_act)
        ks.gemm_quant_packed(xpk, m, i0, rows, wr, y + i0 * N + j0, N);
      else
        ks.gemm_quant(xqp + i0 * nb, nb, rows, wr, y + i0 * N + j0, N);
    }
    if (bias) add_bias(bias, m, N, j0, j1, y);
  });
}

// The two kinds of x the *_rows kernels read (KernelSet::gemm_f32_rows /
// gemm_bf16_rows): 32-bit units of one float32 column, or of two columns
// rounded to bf16 (nearest even; low half first, an odd last column paired
// with zero).
struct F32Units {
  static constexpr int64_t kColsPerUnit = 1;
  static uint32_t unit(const float* row, int64_t u, int64_t) {
    uint32_t bits;
    std::memcpy(&bits, row + u, 4);
    return bits;
  }
  static auto gemm(const KernelSet& ks) { return ks.gemm_f32_rows; }
};

struct Bf16Units {
  static constexpr int64_t kColsPerUnit = 2;
  static uint32_t unit(const float* row, int64_t u, int64_t cols) {
    const uint32_t lo = f32_to_bf16(row[2 * u]);
    const uint32_t hi = 2 * u + 1 < cols ? f32_to_bf16(row[2 * u + 1]) : 0;
    return lo | hi << 16;
  }
  static auto gemm(const KernelSet& ks) { return ks.gemm_bf16_rows; }
};

// x packed in groups of kRowGroup rows (the last zero-padded), then each
// thread's share of weight rows multiplied with all of it, the weights read
// from their own rows.
template <class U>
void linear_rows(const KernelSet& ks, const float* x, int64_t m, const Matrix& w, const float* bias, float* y,
                 ThreadPool& pool) {
  const int64_t K = w.cols, N = w.rows, units = (K + U::kColsPerUnit - 1) / U::kColsPerUnit;
  const int64_t groups = (m + kRowGroup - 1) / kRowGroup;
  thread_local std::vector<uint32_t> packed;
  packed.resize(static_cast<size_t>(groups * units * kRowGroup));
  uint32_t* xp = packed.data();
  pool.parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t t = 0; t < kRowGroup; ++t) {
        const int64_t i = g * kRowGroup + t;
        for (int64_t u = 0; u < units; ++u) xp[(g * units + u) * kRowGroup + t] = i < m ? U::unit(x + i * K, u, K) : 0;
      }
  });
  pool.parallel_for(N, 24, [&](int64_t j0, int64_t j1) {
    U::gemm(ks)(xp, m, rows_of(w, j0, j1), y + j0, N);
    if (bias) add_bias(bias, m, N, j0, j1, y);
  });
}

}  // namespace

bool int8_products(int64_t m) { return m < kQuantPanelMinRows || active().int8_prompts; }

Matrix arranged_for_products(const Matrix& w, ThreadPool* pool) {
  return with_layout(w, active().weight_layout, pool);
}

void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y, ThreadPool& pool) {
  const KernelSet& ks = active();
  const bool quantized = is_quantized(w.format);
  if (quantized && w.layout != quant::Layout::Blocks && ks.weight_layout == quant::Layout::Blocks)
    return linear(x, m, with_layout(w, quant::Layout::Blocks, &pool), bias, y, pool);
  if (quantized && int8_products(m)) return linear_quantized(ks, x, m, w, bias, y, pool);
  if (m >= kPackedMinRows && w.format == WeightFormat::BF16 && ks.gemm_bf16_rows)
    return linear_rows<Bf16Units>(ks, x, m, w, bias, y, pool);
  if (m >= kPackedMinRows && w.format == WeightFormat::F32 && ks.gemm_f32_rows)
    return linear_rows<F32Units>(ks, x, m, w, bias, y, pool);
  if (m >= (quantized ? kQuantPanelMinRows : kPackedMinRows)) return linear_panels(ks, x, m, w, bias, y, pool);
  pool.parallel_for(w.rows, 16, [&](int64_t j0, int64_t j1) {
    ks.gemm_direct(x, w.cols, m, rows_of(w, j0, j1), y + j0, w.rows);
    if (bias) add_bias(bias, m, w.rows, j0, j1, y);
  });
}

}  // namespace gptneo::kernels
