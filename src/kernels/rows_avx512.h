// Products for prompts (many rows of x) with each weight broadcast from its
// own row, for float32 and, with AVX512-BF16, bf16 weights. Included inside
// kernels_avx512.cpp's namespace, after bf16_avx512.h.
//
// x is packed in groups of 16 rows (the last zero-padded) of 32-bit units
// (float32: one column; bf16: two neighbouring columns), unit u of row t of
// group g at xp[(g * units + u) * 16 + t], so that one vector holds a unit
// of 16 rows (kernels/linear.cpp packs it). Each unit of a weight row is
// broadcast from the row itself: the weights need no packing. A tile keeps
// 6 weight rows × 64 rows of x in 24 accumulators; per unit it loads 4
// vectors of x, broadcasts 6 weight units and does 24 multiply-adds (FMA, or
// vdpbf16ps for two columns each), 29 of the 32 registers. Lanes are rows of
// x, so a thread keeps its sums transposed (yt[j * ld + i]) and transposes
// them into y once, 8 × 8 at a time. Depth blocks of 1024 units keep a pass
// of x (256 KB) in L2 while the six weight rows' share stays in L1.
//
// Why not the float32 panels of simd_kernels.h, which widen and transpose
// every block of 32 weight rows × 256 columns once per call: with 128 rows of
// x that packing took a sixth of the products' time. Measured on Zen 5
// (2026-11-29, 2 threads, alternating runs): 1.3B prefill bf16 160-185 ->
// 221-232 tokens/s, f32 77-107 -> 130-136; `linear` with 128 rows, 2048 × 8192 weights, bf16 450 -> 645
// GFLOP/s, f32 274 -> 320. With AVX2 (16 registers, 4 × 2 tiles) the same
// kernel for float32 ran 3-5 % slower than the panels, so only the AVX-512
// set has it.

// (Groups of kRowGroup = 16 rows of x, kernel_set.h: one vector's lanes.)
static_assert(kRowGroup == 16);
constexpr int64_t kRowsDepthUnits = 1024;

// float32 weights: a unit is one column.
struct F32Units {
  using X = __m512;
  static X load_x(const uint32_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
  static X weight(int32_t unit) { return _mm512_castsi512_ps(_mm512_set1_epi32(unit)); }
  static __m512 madd(__m512 acc, X w, X x) { return _mm512_fmadd_ps(w, x, acc); }
};

// bf16 weights: a unit is two columns, summed by one vdpbf16ps.
struct Bf16Units {
  using X = __m512bh;
  static X load_x(const uint32_t* p) { return as_bf16_pairs(_mm512_loadu_si512(p)); }
  static X weight(int32_t unit) { return as_bf16_pairs(_mm512_set1_epi32(unit)); }
  static __m512 madd(__m512 acc, X w, X x) { return _mm512_dpbf16_ps(acc, w, x); }
};

// A row whose last unit is half a unit (bf16, odd columns) ends early: its
// other half is not read, and multiplies a zero of x.
template <class U, int R, int G>
inline void rows_tile(const uint32_t* xg, int64_t units, const uint8_t* w, size_t row_bytes, int64_t u0,
                      int64_t nu, bool half_tail, float* yt, int64_t ld, bool accumulate) {
  __m512 acc[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w + r * row_bytes + u0 * 4;
  const auto step = [&](int64_t u, int bytes) {
    typename U::X xv[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) xv[g] = U::load_x(xg + (g * units + u0 + u) * kRowGroup);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t unit = 0;
      __builtin_memcpy(&unit, rows[r] + u * 4, bytes);
      const typename U::X b = U::weight(unit);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[r][g] = U::madd(acc[r][g], b, xv[g]);
    }
  };
  const int64_t whole = half_tail ? nu - 1 : nu;
#pragma GCC unroll 2
  for (int64_t u = 0; u < whole; ++u) step(u, 4);
  if (half_tail) step(whole, 2);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      float* out = yt + r * ld + g * kRowGroup;
      S::store(out, accumulate ? S::add(S::load(out), acc[r][g]) : acc[r][g]);
    }
}

// R weight rows against every pass of 64 rows of x.
template <class U, int R>
inline void rows_pass(const uint32_t* xp, int64_t m, int64_t units, const uint8_t* w, size_t row_bytes, int64_t u0,
                      int64_t nu, bool half_tail, float* yt, int64_t ld, bool accumulate) {
  constexpr int64_t kPass = 4 * kRowGroup;
  for (int64_t i0 = 0; i0 < m; i0 += kPass) {
    const uint32_t* xg = xp + i0 * units;
    const int64_t groups = (std::min(kPass, m - i0) + kRowGroup - 1) / kRowGroup;
    [&]<int... Gs>(std::integer_sequence<int, Gs...>) {
      ((groups == Gs + 1 ? rows_tile<U, R, Gs + 1>(xg, units, w, row_bytes, u0, nu, half_tail, yt + i0, ld, accumulate)
                         : void()),
       ...);
    }(std::make_integer_sequence<int, 4>{});
  }
}

// y[i * ldy + j] = x(i) · weight row j for i < m, j < w.rows; `units` units
// per row (the last a half unit when half_tail).
template <class U>
void gemm_rows(const uint32_t* xp, int64_t m, const WeightRows& w, int64_t units, bool half_tail, float* y,
               int64_t ldy) {
  constexpr int R = 6;
  const int64_t ld = (m + kRowGroup - 1) / kRowGroup * kRowGroup;
  thread_local std::vector<float> sums;
  sums.resize(static_cast<size_t>(w.rows * ld));
  float* yt = sums.data();
  for (int64_t u0 = 0; u0 < units; u0 += kRowsDepthUnits) {
    const int64_t nu = std::min(kRowsDepthUnits, units - u0);
    const bool tail = half_tail && u0 + nu == units, acc = u0 > 0;
    int64_t j = 0;
    for (; j + R <= w.rows; j += R)
      rows_pass<U, R>(xp, m, units, w.data + j * w.row_bytes, w.row_bytes, u0, nu, tail, yt + j * ld, ld, acc);
    const int64_t rest = w.rows - j;
    [&]<int... Rs>(std::integer_sequence<int, Rs...>) {
      ((rest == Rs + 1 ? rows_pass<U, Rs + 1>(xp, m, units, w.data + j * w.row_bytes, w.row_bytes, u0, nu, tail,
                                                yt + j * ld, ld, acc)
                       : void()),
       ...);
    }(std::make_integer_sequence<int, R - 1>{});
  }
  // yt (w.rows × ld) into y (m × w.rows): 8 × 8 blocks, then the edges.
  const int64_t m8 = m / 8 * 8, n8 = w.rows / 8 * 8;
  for (int64_t j = 0; j < n8; j += 8)
    for (int64_t i = 0; i < m8; i += 8) transpose_8x8(yt + j * ld + i, ld, y + i * ldy + j, ldy);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i < m8 ? n8 : 0; j < w.rows; ++j) y[i * ldy + j] = yt[j * ld + i];
}

void gemm_f32_rows(const uint32_t* xp, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  gemm_rows<F32Units>(xp, m, w, w.cols, false, y, ldy);
}

void gemm_bf16_rows(const uint32_t* xp, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  gemm_rows<Bf16Units>(xp, m, w, (w.cols + 1) / 2, w.cols % 2 == 1, y, ldy);
}
