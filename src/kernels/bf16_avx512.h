// Products with bf16 weights for CPUs with AVX512-BF16: vdpbf16ps multiplies
// 32 pairs of bf16 values and adds each pair's two products into one of 16
// float32 sums, twice the work of a float32 FMA per instruction. Used for
// many rows of x (prompts): the activations are rounded to bf16 once per
// call (as PyTorch's bf16 models and llama.cpp do); the weights are bf16
// already; every sum stays float32. One row of x (decoding) keeps the float32
// activations of gemm_direct: it is bound by memory, not arithmetic.
//
// Both operands are read as 32-bit units, each holding the bf16 values of
// two neighbouring columns k = 2p, 2p + 1 (an odd last column pairs with
// zero), low half first:
//   panel: unit (p, j) of weight row j at panel[p * kPanelWidth + j];
//   x: tiles of S::kPanelRows rows (the last zero-padded), unit (p, r) of
//      tile t at xp[(t * pairs + p) * S::kPanelRows + r] (kernels/linear.cpp
//      packs it).
//
// Included inside kernels_avx512.cpp's namespace, after simd_kernels.h.

inline __m512bh as_bf16_pairs(__m512i v) {
  __m512bh r;
  __builtin_memcpy(&r, &v, sizeof r);
  return r;
}

// Weight rows [0, w.rows) (at most kPanelWidth; missing rows are zeros),
// columns [k0, k0 + kc), as bf16 pairs: the rows are laid out as 32-bit
// units, then transposed 8 × 8 at a time (a float transpose only moves bits).
void pack_panel_bf16(const WeightRows& w, int64_t k0, int64_t kc, uint32_t* panel) {
  constexpr int64_t kMaxPairs = kMaxPanelDepth / 2;
  alignas(64) uint32_t seg[kPanelWidth * kMaxPairs];
  const int64_t pairs = (kc + 1) / 2;
  const uint32_t* src = seg;
  int64_t lds = kMaxPairs;
  const bool even = w.cols % 2 == 0;  // then k0 and kc are even too, and rows are whole units
  if (even && w.rows == kPanelWidth) {
    src = reinterpret_cast<const uint32_t*>(w.data) + k0 / 2;
    lds = static_cast<int64_t>(w.row_bytes / 4);
  } else {
    for (int64_t j = 0; j < kPanelWidth; ++j) {
      uint32_t* out = seg + j * kMaxPairs;
      if (j >= w.rows) {
        for (int64_t p = 0; p < pairs; ++p) out[p] = 0;
        continue;
      }
      const auto* row = reinterpret_cast<const uint16_t*>(w.data + static_cast<size_t>(j) * w.row_bytes) + k0;
      if (even) {
        __builtin_memcpy(out, row, static_cast<size_t>(pairs) * 4);
      } else {
        for (int64_t p = 0; p < pairs; ++p) {
          const uint32_t lo = row[2 * p], hi = 2 * p + 1 < kc ? row[2 * p + 1] : 0;
          out[p] = lo | hi << 16;
        }
      }
    }
  }
  const int64_t pairs8 = pairs / 8 * 8;
  for (int64_t j = 0; j < kPanelWidth; j += 8)
    for (int64_t p = 0; p < pairs8; p += 8)
      transpose_8x8(reinterpret_cast<const float*>(src + j * lds + p), lds,
                    reinterpret_cast<float*>(panel + p * kPanelWidth + j), kPanelWidth);
  // (Rows read in place may be only 2-byte aligned: copied, not dereferenced.)
  for (int64_t p = pairs8; p < pairs; ++p)
    for (int64_t j = 0; j < kPanelWidth; ++j) __builtin_memcpy(panel + p * kPanelWidth + j, src + j * lds + p, 4);
}

// One tile of MR packed rows of x against one bf16 panel: MR × 2 float32
// accumulators (32 columns), per pair of columns two panel loads, one
// broadcast of x and two vdpbf16ps per row.
template <int MR>
inline void panel_tile_bf16(const uint32_t* xt, int64_t rows, const uint32_t* panel, int64_t pairs, int64_t n,
                            float* y, int64_t ldy, bool accumulate) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh w0 = as_bf16_pairs(_mm512_loadu_si512(panel + p * kPanelWidth));
    const __m512bh w1 = as_bf16_pairs(_mm512_loadu_si512(panel + p * kPanelWidth + 16));
    for (int r = 0; r < MR; ++r) {
      const __m512bh b = as_bf16_pairs(_mm512_set1_epi32(static_cast<int>(xt[p * MR + r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], w0, b);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], w1, b);
    }
  }
  for (int r = 0; r < MR && r < rows; ++r) {
    float* yr = y + r * ldy;
    if (n == kPanelWidth) {
      if (accumulate) {
        acc[r][0] = S::add(acc[r][0], S::load(yr));
        acc[r][1] = S::add(acc[r][1], S::load(yr + 16));
      }
      S::store(yr, acc[r][0]);
      S::store(yr + 16, acc[r][1]);
    } else {
      alignas(64) float tmp[kPanelWidth];
      S::store(tmp, acc[r][0]);
      S::store(tmp + 16, acc[r][1]);
      for (int64_t j = 0; j < n; ++j) yr[j] = accumulate ? yr[j] + tmp[j] : tmp[j];
    }
  }
}

// y[i * ldy + j] (+)= the tile products over kc columns, for i < m, j < n.
void gemm_panel_bf16(const uint32_t* xp, int64_t m, const uint32_t* panel, int64_t kc, int64_t n, float* y,
                     int64_t ldy, bool accumulate) {
  constexpr int MR = S::kPanelRows;
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t i = 0; i < m; i += MR)
    panel_tile_bf16<MR>(xp + (i / MR) * pairs * MR, m - i, panel, pairs, n, y + i * ldy, ldy, accumulate);
}

// The bf16 dot-product rate: twelve independent chains of vdpbf16ps on
// registers (each 16 lanes × 2 products: 64 floating-point operations).
double bf16_dot_loop(int64_t iters) {
  constexpr int kChains = 12;
  __m512 a[kChains];
  for (int c = 0; c < kChains; ++c) a[c] = _mm512_set1_ps(0.001f * c);
  const __m512bh u = as_bf16_pairs(_mm512_set1_epi32(0x3f7f3f7f)), v = as_bf16_pairs(_mm512_set1_epi32(0x38d138d1));
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) a[c] = _mm512_dpbf16_ps(a[c], u, v);
  __m512 total = _mm512_setzero_ps();
  for (int c = 0; c < kChains; ++c) total = _mm512_add_ps(total, a[c]);
  volatile float sink = S::hsum(total);  // keeps the loop from being optimised away
  (void)sink;
  return static_cast<double>(iters) * kChains * 64;
}
