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
// zero), low half first: x packed in groups of 16 rows (kernels/linear.cpp
// packs it, layout below), the weights in their own rows.
//
// Why not pack the weights, as the float32 panels do: with 128 rows of x
// that packing (a transpose of every weight block, reading 32 rows at once)
// took a sixth of the time of the products (1.3B bf16 prefill 160-185
// tokens/s, 47-55 % of the bf16 peak; 221-229 tokens/s without it, 3
// alternating runs; `linear` 2048 × 8192 with 128 rows, 2 threads: 450 ->
// 645 GFLOP/s).
//
// Included inside kernels_avx512.cpp's namespace, after simd_kernels.h.

inline __m512bh as_bf16_pairs(__m512i v) {
  __m512bh r;
  __builtin_memcpy(&r, &v, sizeof r);
  return r;
}

// ---- weights broadcast from their own rows -------------------------------
// x is packed in groups of 16 rows (the last zero-padded), unit (p, t) of
// group g at xp[(g * pairs + p) * 16 + t]: one vector per pair of columns
// holds 16 rows of x. Each weight unit (two neighbouring columns of one
// weight row) is broadcast from the row itself, so the weights need no
// packing: an R × G tile keeps R weight rows × 16G rows of x in R × G
// accumulators, per pair of columns G loads of x, R broadcasts and R × G
// vdpbf16ps. Each lane of an accumulator is one row of x, so the sums are
// kept transposed (yt: weight row j's sums over the rows of x at
// yt[j * ld + i]) and transposed into y at the end.
constexpr int64_t kBf16Group = 16;
// Column pairs per depth block: a pass of x (64 rows) is 256 KB, in L2.
constexpr int64_t kBf16DepthPairs = 1024;

template <int R, int G>
inline void bf16_rows_tile(const uint32_t* xg, int64_t pairs, const uint8_t* w, size_t row_bytes, int64_t p0,
                           int64_t np, bool odd_tail, float* yt, int64_t ld, bool accumulate) {
  __m512 acc[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w + r * row_bytes + p0 * 4;
  const auto step = [&](int64_t p, auto unit_of) {
    __m512bh xv[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) xv[g] = as_bf16_pairs(_mm512_loadu_si512(xg + (g * pairs + p0 + p) * kBf16Group));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh b = as_bf16_pairs(_mm512_set1_epi32(unit_of(rows[r] + p * 4)));
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], b, xv[g]);
    }
  };
  const auto whole = [](const uint8_t* q) {
    int32_t u;
    __builtin_memcpy(&u, q, 4);
    return u;
  };
  // A row of odd length ends with half a unit: its other half is not read.
  const auto half = [](const uint8_t* q) {
    uint16_t u;
    __builtin_memcpy(&u, q, 2);
    return static_cast<int32_t>(u);
  };
  const int64_t full = odd_tail ? np - 1 : np;
#pragma GCC unroll 2
  for (int64_t p = 0; p < full; ++p) step(p, whole);
  if (odd_tail) step(full, half);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      float* out = yt + r * ld + g * kBf16Group;
      S::store(out, accumulate ? S::add(S::load(out), acc[r][g]) : acc[r][g]);
    }
}

template <int R>
inline void bf16_rows_pass(const uint32_t* xp, int64_t m, int64_t pairs, const uint8_t* w, size_t row_bytes,
                           int64_t p0, int64_t np, bool odd_tail, float* yt, int64_t ld, bool accumulate) {
  constexpr int64_t kPass = 4 * kBf16Group;
  for (int64_t i0 = 0; i0 < m; i0 += kPass) {
    const uint32_t* xg = xp + (i0 / kBf16Group) * pairs * kBf16Group;
    float* out = yt + i0;
    switch ((std::min(kPass, m - i0) + kBf16Group - 1) / kBf16Group) {
      case 4: bf16_rows_tile<R, 4>(xg, pairs, w, row_bytes, p0, np, odd_tail, out, ld, accumulate); break;
      case 3: bf16_rows_tile<R, 3>(xg, pairs, w, row_bytes, p0, np, odd_tail, out, ld, accumulate); break;
      case 2: bf16_rows_tile<R, 2>(xg, pairs, w, row_bytes, p0, np, odd_tail, out, ld, accumulate); break;
      default: bf16_rows_tile<R, 1>(xg, pairs, w, row_bytes, p0, np, odd_tail, out, ld, accumulate); break;
    }
  }
}

// y[i * ldy + j] = x(i) · weight row j for i < m, j < w.rows. Weight rows
// six at a time (6 × 4 accumulators, 4 vectors of x, 1 broadcast of the 32
// registers), each against every pass of 64 rows of x while its pairs of the
// depth block stay in L1.
void gemm_bf16_rows(const uint32_t* xp, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  constexpr int R = 6;
  const int64_t pairs = (w.cols + 1) / 2, ld = (m + kBf16Group - 1) / kBf16Group * kBf16Group;
  thread_local std::vector<float> sums;
  sums.resize(static_cast<size_t>(w.rows * ld));
  float* yt = sums.data();
  for (int64_t p0 = 0; p0 < pairs; p0 += kBf16DepthPairs) {
    const int64_t np = std::min(kBf16DepthPairs, pairs - p0);
    const bool odd_tail = w.cols % 2 == 1 && p0 + np == pairs, acc = p0 > 0;
    int64_t j = 0;
    for (; j + R <= w.rows; j += R)
      bf16_rows_pass<R>(xp, m, pairs, w.data + j * w.row_bytes, w.row_bytes, p0, np, odd_tail, yt + j * ld, ld, acc);
    const uint8_t* rest = w.data + j * w.row_bytes;
    float* out = yt + j * ld;
    switch (w.rows - j) {
      case 5: bf16_rows_pass<5>(xp, m, pairs, rest, w.row_bytes, p0, np, odd_tail, out, ld, acc); break;
      case 4: bf16_rows_pass<4>(xp, m, pairs, rest, w.row_bytes, p0, np, odd_tail, out, ld, acc); break;
      case 3: bf16_rows_pass<3>(xp, m, pairs, rest, w.row_bytes, p0, np, odd_tail, out, ld, acc); break;
      case 2: bf16_rows_pass<2>(xp, m, pairs, rest, w.row_bytes, p0, np, odd_tail, out, ld, acc); break;
      case 1: bf16_rows_pass<1>(xp, m, pairs, rest, w.row_bytes, p0, np, odd_tail, out, ld, acc); break;
      default: break;
    }
  }
  // yt (w.rows × ld) into y (m × w.rows): 8 × 8 blocks, then the edges.
  const int64_t m8 = m / 8 * 8, n8 = w.rows / 8 * 8;
  for (int64_t j = 0; j < n8; j += 8)
    for (int64_t i = 0; i < m8; i += 8) transpose_8x8(yt + j * ld + i, ld, y + i * ldy + j, ldy);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i < m8 ? n8 : 0; j < w.rows; ++j) y[i * ldy + j] = yt[j * ld + i];
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
