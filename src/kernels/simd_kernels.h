// The vector kernels, written once over a small SIMD interface `S` and
// compiled once per ISA: kernels_avx2.cpp and kernels_avx512.cpp define `S`
// (8 or 16 float lanes) and include this file inside their own namespace.
//
// Everything here must stay inside that namespace and use no out-of-line
// library templates: a function compiled for AVX-512 that the linker could
// merge with another TU's copy would run on CPUs without it.
//
// S provides: V (a vector of L floats), L, kPanelRows, kName, kIsa, zero(),
// set1(f), load(p), store(p, v) (unaligned), store_f16(p, v) (IEEE half
// bits, nearest even), add, sub, mul, div, fma(a, b, c)
// = a * b + c, min, max, hsum, hmax, round, pow2i(n) = 2^n for integral n,
// less_select(x, t, a, b) = x < t ? a : b, load_f16(p), load_bf16(p), q8(p)
// (L int8 as floats), q4_lo(p) / q4_hi(p) (the low / high nibbles of L bytes
// as floats), f16_scalar(h).
//
// Requires: <cmath>, <limits>, kernels/kernel_set.h, kernels/quant_blocks.h, and
// included before: kernels/avx2_common.h (transpose_8x8) and
// kernels/int8_avx2.h (quantize_act, gemm_quant for q8 / q4 weights).

using V = typename S::V;
constexpr int L = S::L;

// Local stand-ins for std::min / std::max and the header helpers (see above).
inline int64_t min_i(int64_t a, int64_t b) { return a < b ? a : b; }
inline float max_f(float a, float b) { return a < b ? b : a; }
inline bool quantized(WeightFormat f) { return f == WeightFormat::Q8 || f == WeightFormat::Q4; }
inline int64_t blocks_of(int64_t cols) { return (cols + 31) / 32; }
inline float from_bf16(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
constexpr int kVecsPerBlock = static_cast<int>(quant::kBlock) / L;

// ---- weights: a row, read 32 values (one block) at a time ----------------------
//
// Each format reads step `s` (columns [32 s, 32 s + 32)) of a row as
// kVecsPerBlock float vectors; `scalar(row, k)` is one weight, for tails.

struct F32W {
  static constexpr WeightFormat kFormat = WeightFormat::F32;
  static constexpr int64_t kBlockBytes = 128;
  struct Step {
    const float* p;
  };
  static Step step(const uint8_t* row, int64_t s) { return {reinterpret_cast<const float*>(row) + s * 32}; }
  static V vec(const Step& st, int v) { return S::load(st.p + v * L); }
  static float scalar(const uint8_t* row, int64_t k) { return reinterpret_cast<const float*>(row)[k]; }
};

struct F16W {
  static constexpr WeightFormat kFormat = WeightFormat::F16;
  static constexpr int64_t kBlockBytes = 64;
  struct Step {
    const uint16_t* p;
  };
  static Step step(const uint8_t* row, int64_t s) { return {reinterpret_cast<const uint16_t*>(row) + s * 32}; }
  static V vec(const Step& st, int v) { return S::load_f16(st.p + v * L); }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * k, 2);
    return S::f16_scalar(h);
  }
};

struct BF16W {
  static constexpr WeightFormat kFormat = WeightFormat::BF16;
  static constexpr int64_t kBlockBytes = 64;
  struct Step {
    const uint16_t* p;
  };
  static Step step(const uint8_t* row, int64_t s) { return {reinterpret_cast<const uint16_t*>(row) + s * 32}; }
  static V vec(const Step& st, int v) { return S::load_bf16(st.p + v * L); }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * k, 2);
    return from_bf16(h);
  }
};

struct Q8W {
  static constexpr WeightFormat kFormat = WeightFormat::Q8;
  struct Step {
    const int8_t* q;
    V d;
  };
  static Step step(const uint8_t* row, int64_t s) {
    const auto* b = reinterpret_cast<const quant::BlockQ8*>(row) + s;
    return {b->q, S::set1(S::f16_scalar(b->d))};
  }
  static V vec(const Step& st, int v) { return S::mul(S::q8(st.q + v * L), st.d); }
  static float scalar(const uint8_t*, int64_t) { return 0; }  // rows are whole blocks: no tails
};

struct Q4W {
  static constexpr WeightFormat kFormat = WeightFormat::Q4;
  struct Step {
    const uint8_t* q;
    V d, m;
  };
  static Step step(const uint8_t* row, int64_t s) {
    const auto* b = reinterpret_cast<const quant::BlockQ4*>(row) + s;
    return {b->q, S::set1(S::f16_scalar(b->d)), S::set1(S::f16_scalar(b->m))};
  }
  // Vector v holds elements [v L, v L + L): low nibbles of the first 16
  // bytes, then high nibbles.
  static V vec(const Step& st, int v) {
    constexpr int kLoVecs = 16 / L;
    const V q = v < kLoVecs ? S::q4_lo(st.q + v * L) : S::q4_hi(st.q + (v - kLoVecs) * L);
    return S::fma(q, st.d, st.m);
  }
  static float scalar(const uint8_t*, int64_t) { return 0; }
};

// ---- y = x · wᵀ reading the weights directly (decode) ---------------------------

template <class W, int MR, int NR>
inline void direct_tile(const float* x, int64_t ldx, const WeightRows& w, int64_t j, float* y, int64_t ldy,
                        int64_t steps) {
  V acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = S::zero();
  const uint8_t* rows[NR];
  for (int c = 0; c < NR; ++c) rows[c] = w.data + static_cast<size_t>(j + c) * w.row_bytes;
  // The next tile's rows, at the block this one is at (as gemm_quant does):
  // the rows of gpt-neo-125M (1.5 KB in bf16) end before the hardware
  // prefetcher has caught on to a stream.
  constexpr int64_t kBlockBytes = W::kBlockBytes;
  const size_t ahead = NR * w.row_bytes;
  for (int64_t s = 0; s < steps; ++s) {
    for (int c = 0; c < NR; ++c)
      for (int64_t line = 0; line < kBlockBytes; line += 64)
        prefetch_l2(rows[c] + ahead + s * kBlockBytes + line);
    typename W::Step st[NR];
    for (int c = 0; c < NR; ++c) st[c] = W::step(rows[c], s);
    for (int v = 0; v < kVecsPerBlock; ++v) {
      V wv[NR];
      for (int c = 0; c < NR; ++c) wv[c] = W::vec(st[c], v);
      for (int r = 0; r < MR; ++r) {
        const V xv = S::load(x + r * ldx + s * 32 + v * L);
        for (int c = 0; c < NR; ++c) acc[r][c] = S::fma(xv, wv[c], acc[r][c]);
      }
    }
  }
  // A partial last block, summed one by one.
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      float sum = S::hsum(acc[r][c]);
      for (int64_t k = steps * 32; k < w.cols; ++k) sum += x[r * ldx + k] * W::scalar(rows[c], k);
      y[r * ldy + c] = sum;
    }
}

template <class W, int NR>
inline void direct_rows(const float* x, int64_t ldx, int64_t m, const WeightRows& w, int64_t j, float* y,
                        int64_t ldy, int64_t steps) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) direct_tile<W, 4, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy, steps);
  switch (m - i) {
    case 3: direct_tile<W, 3, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy, steps); break;
    case 2: direct_tile<W, 2, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy, steps); break;
    case 1: direct_tile<W, 1, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy, steps); break;
    default: break;
  }
}

template <class W>
void gemm_direct_fmt(const float* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  // Whole blocks of 32 in vectors; a partial last block one by one.
  const int64_t steps = w.cols / 32;
  int64_t j = 0;
  // One row of x, 16-bit weights: one weight row at a time, so that a thread
  // reads its weights as one sequential stream (as gemm_quant does). Tiles of
  // four rows (four short interleaved streams) read the 768-column bf16 rows
  // of gpt-neo-125M at 10-11 GB/s against 16-17 with one row (`linear` of a
  // 3072 × 768 matrix from DRAM, 2 threads, Zen 3; 125M bf16 decode 42-45 ->
  // 61-66 tokens/s); at 2048 columns the two were alike. f32 rows keep tiles
  // of four, for four independent FMA chains: with one row 125M f32 decoded
  // at 25-34 tokens/s against 35-37.
  // Several rows of x: two weight rows, each reused by up to four x rows.
  constexpr int kOneRowTile = W::kFormat == WeightFormat::F32 ? 4 : 1;
  if (m == 1)
    for (; j + kOneRowTile <= w.rows; j += kOneRowTile) direct_rows<W, kOneRowTile>(x, ldx, m, w, j, y + j, ldy, steps);
  else
    for (; j + 2 <= w.rows; j += 2) direct_rows<W, 2>(x, ldx, m, w, j, y + j, ldy, steps);
  for (; j < w.rows; ++j) direct_rows<W, 1>(x, ldx, m, w, j, y + j, ldy, steps);
}

void gemm_direct(const float* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  switch (w.format) {
    case WeightFormat::F32: return gemm_direct_fmt<F32W>(x, ldx, m, w, y, ldy);
    case WeightFormat::F16: return gemm_direct_fmt<F16W>(x, ldx, m, w, y, ldy);
    case WeightFormat::BF16: return gemm_direct_fmt<BF16W>(x, ldx, m, w, y, ldy);
    case WeightFormat::Q8:
    case WeightFormat::Q4: return;  // gemm_quant multiplies them
  }
}

// ---- y = x · wᵀ through packed float32 panels (prefill) ---------------------------

constexpr int64_t kPanelWidth = 2 * L;
constexpr int64_t kMaxPanelDepth = 512;

// Row `row`, columns [k0, k0 + kc), as floats.
template <class W>
inline void dequantize_segment(const uint8_t* row, int64_t cols, int64_t k0, int64_t kc, float* out) {
  // Quantized rows are whole blocks (the padding is never read back); float
  // rows may end in a partial block, widened one by one.
  const int64_t n = min_i(kc, cols - k0);
  const int64_t full = quantized(W::kFormat) ? blocks_of(n) : n / 32;
  for (int64_t s = 0; s < full; ++s) {
    const typename W::Step st = W::step(row, k0 / 32 + s);
    for (int v = 0; v < kVecsPerBlock; ++v) S::store(out + s * 32 + v * L, W::vec(st, v));
  }
  for (int64_t k = full * 32; k < n; ++k) out[k] = W::scalar(row, k0 + k);
}

// The panel is the transpose of kPanelWidth weight rows: those rows are
// widened into a row-major float block (float32 rows are read in place),
// then transposed 8 × 8 at a time.
template <class W>
void pack_panel_fmt(const WeightRows& w, int64_t k0, int64_t kc, float* panel) {
  alignas(64) float seg[kPanelWidth * kMaxPanelDepth];
  const float* src = seg;
  int64_t lds = kMaxPanelDepth;
  if (W::kFormat == WeightFormat::F32 && w.rows == kPanelWidth) {
    src = reinterpret_cast<const float*>(w.data) + k0;
    lds = static_cast<int64_t>(w.row_bytes / sizeof(float));
  } else {
    for (int64_t j = 0; j < kPanelWidth; ++j) {
      float* out = seg + j * kMaxPanelDepth;
      if (j < w.rows)
        dequantize_segment<W>(w.data + static_cast<size_t>(j) * w.row_bytes, w.cols, k0, kc, out);
      else
        for (int64_t k = 0; k < kc; ++k) out[k] = 0.0f;
    }
  }
  const int64_t kc8 = kc / 8 * 8;
  for (int64_t j = 0; j < kPanelWidth; j += 8)
    for (int64_t k = 0; k < kc8; k += 8) transpose_8x8(src + j * lds + k, lds, panel + k * kPanelWidth + j, kPanelWidth);
  for (int64_t k = kc8; k < kc; ++k)
    for (int64_t j = 0; j < kPanelWidth; ++j) panel[k * kPanelWidth + j] = src[j * lds + k];
}

void pack_panel(const WeightRows& w, int64_t k0, int64_t kc, float* panel) {
  switch (w.format) {
    case WeightFormat::F32: return pack_panel_fmt<F32W>(w, k0, kc, panel);
    case WeightFormat::F16: return pack_panel_fmt<F16W>(w, k0, kc, panel);
    case WeightFormat::BF16: return pack_panel_fmt<BF16W>(w, k0, kc, panel);
    case WeightFormat::Q8: return pack_panel_fmt<Q8W>(w, k0, kc, panel);
    case WeightFormat::Q4: return pack_panel_fmt<Q4W>(w, k0, kc, panel);
  }
}

// One tile of MR packed rows of x against one panel: MR × 2 vector
// accumulators, one broadcast of x and two panel loads per step of k
// (unrolled: the loop's own instructions would otherwise cost a quarter of
// the FMA rate). Only the first `rows` rows are stored.
template <int MR>
inline void panel_tile(const float* xt, int64_t rows, const float* panel, int64_t kc, int64_t n, float* y,
                       int64_t ldy, bool accumulate) {
  V acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = S::zero();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const V w0 = S::load(panel + k * kPanelWidth), w1 = S::load(panel + k * kPanelWidth + L);
    for (int r = 0; r < MR; ++r) {
      const V b = S::set1(xt[k * MR + r]);
      acc[r][0] = S::fma(b, w0, acc[r][0]);
      acc[r][1] = S::fma(b, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR && r < rows; ++r) {
    float* yr = y + r * ldy;
    if (n == kPanelWidth) {
      if (accumulate) {
        acc[r][0] = S::add(acc[r][0], S::load(yr));
        acc[r][1] = S::add(acc[r][1], S::load(yr + L));
      }
      S::store(yr, acc[r][0]);
      S::store(yr + L, acc[r][1]);
    } else {
      alignas(64) float tmp[kPanelWidth];
      S::store(tmp, acc[r][0]);
      S::store(tmp + L, acc[r][1]);
      for (int64_t j = 0; j < n; ++j) yr[j] = accumulate ? yr[j] + tmp[j] : tmp[j];
    }
  }
}

void gemm_panel(const float* xp, int64_t m, const float* panel, int64_t kc, int64_t n, float* y, int64_t ldy,
                bool accumulate) {
  constexpr int MR = S::kPanelRows;
  for (int64_t i = 0; i < m; i += MR)
    panel_tile<MR>(xp + (i / MR) * kc * MR, m - i, panel, kc, n, y + i * ldy, ldy, accumulate);
}

// ---- vector primitives --------------------------------------------------------------

float dot(const float* a, const float* b, int64_t n) {
  V s0 = S::zero(), s1 = S::zero(), s2 = S::zero(), s3 = S::zero();
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    s0 = S::fma(S::load(a + i), S::load(b + i), s0);
    s1 = S::fma(S::load(a + i + L), S::load(b + i + L), s1);
    s2 = S::fma(S::load(a + i + 2 * L), S::load(b + i + 2 * L), s2);
    s3 = S::fma(S::load(a + i + 3 * L), S::load(b + i + 3 * L), s3);
  }
  for (; i + L <= n; i += L) s0 = S::fma(S::load(a + i), S::load(b + i), s0);
  float s = S::hsum(S::add(S::add(s0, s1), S::add(s2, s3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const V av = S::set1(a);
  int64_t i = 0;
  for (; i + L <= n; i += L) S::store(y + i, S::fma(av, S::load(x + i), S::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// max(lo, v) and min(hi, v) return v when it is NaN (the second operand),
// so NaN stays NaN, as in the scalar set. A last partial vector goes through
// a buffer, so that every element takes the same instructions.
void to_f16(const float* x, int64_t n, uint16_t* out) {
  const V lo = S::set1(-65504.0f), hi = S::set1(65504.0f);
  const auto convert = [&](const float* in, uint16_t* to) { S::store_f16(to, S::min(hi, S::max(lo, S::load(in)))); };
  int64_t i = 0;
  for (; i + L <= n; i += L) convert(x + i, out + i);
  if (i < n) {
    float in[L] = {};
    uint16_t to[L];
    for (int64_t k = i; k < n; ++k) in[k - i] = x[k];
    convert(in, to);
    for (int64_t k = i; k < n; ++k) out[k] = to[k - i];
  }
}

void add(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) S::store(y + i, S::add(S::load(y + i), S::load(x + i)));
  for (; i < n; ++i) y[i] += x[i];
}

float sum(const float* x, int64_t n) {
  V s0 = S::zero(), s1 = S::zero();
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    s0 = S::add(s0, S::load(x + i));
    s1 = S::add(s1, S::load(x + i + L));
  }
  for (; i + L <= n; i += L) s0 = S::add(s0, S::load(x + i));
  float s = S::hsum(S::add(s0, s1));
  for (; i < n; ++i) s += x[i];
  return s;
}

void layer_norm_row(const float* x, int64_t d, const float* gamma, const float* beta, float eps, float* y) {
  // Two passes, as PyTorch: the mean, then the centred variance.
  const float mean = sum(x, d) / static_cast<float>(d);
  const V mv = S::set1(mean);
  V acc = S::zero();
  int64_t i = 0;
  for (; i + L <= d; i += L) {
    const V c = S::sub(S::load(x + i), mv);
    acc = S::fma(c, c, acc);
  }
  float var = S::hsum(acc);
  for (; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<float>(d);
  const float inv = 1.0f / std::sqrt(var + eps);
  const V iv = S::set1(inv);
  i = 0;
  for (; i + L <= d; i += L) {
    const V c = S::mul(S::sub(S::load(x + i), mv), iv);
    S::store(y + i, S::fma(c, S::load(gamma + i), S::load(beta + i)));
  }
  for (; i < d; ++i) y[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

// e^x to about 2 ulp (Cephes' expf): x = n ln2 + r, a degree-6 polynomial in
// r, times 2^n. Below -87.3 (e^x under the smallest normal float) the
// result is 0, so e^-inf is exactly 0 as softmax needs.
inline V exp_v(V x) {
  const V hi = S::set1(88.3762626647949f), lo = S::set1(-87.3365447504f);
  const V xc = S::min(x, hi);
  const V n = S::round(S::mul(xc, S::set1(1.44269504088896341f)));
  V r = S::fma(n, S::set1(-0.693359375f), xc);
  r = S::fma(n, S::set1(2.12194440e-4f), r);
  V p = S::set1(1.9875691500e-4f);
  p = S::fma(p, r, S::set1(1.3981999507e-3f));
  p = S::fma(p, r, S::set1(8.3334519073e-3f));
  p = S::fma(p, r, S::set1(4.1665795894e-2f));
  p = S::fma(p, r, S::set1(1.6666665459e-1f));
  p = S::fma(p, r, S::set1(5.0000001201e-1f));
  p = S::fma(p, S::mul(r, r), S::add(r, S::set1(1.0f)));
  return S::less_select(xc, lo, S::zero(), S::mul(p, S::pow2i(n)));
}

void softmax(float* x, int64_t n) {
  V mv = S::set1(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + L <= n; i += L) mv = S::max(mv, S::load(x + i));
  float mx = S::hmax(mv);
  for (; i < n; ++i) mx = max_f(mx, x[i]);
  const V m = S::set1(mx);
  V acc = S::zero();
  i = 0;
  for (; i + L <= n; i += L) {
    const V e = exp_v(S::sub(S::load(x + i), m));
    S::store(x + i, e);
    acc = S::add(acc, e);
  }
  float total = S::hsum(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    total += x[i];
  }
  const float inv = 1.0f / total;
  const V iv = S::set1(inv);
  i = 0;
  for (; i + L <= n; i += L) S::store(x + i, S::mul(S::load(x + i), iv));
  for (; i < n; ++i) x[i] *= inv;
}

// 0.5 v (1 + tanh(√(2/π) (v + 0.044715 v³))), the GELU of GPT-Neo and GPT-J,
// with tanh(u) = 1 - 2 / (e^{2u} + 1) (u clamped where tanh is ±1 in float).
void gelu_tanh(float* x, int64_t n) {
  const V c0 = S::set1(0.7978845608028654f), c1 = S::set1(0.044715f), half = S::set1(0.5f), one = S::set1(1.0f),
          two = S::set1(2.0f), umax = S::set1(10.0f), umin = S::set1(-10.0f);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V v = S::load(x + i);
    V u = S::mul(c0, S::fma(S::mul(c1, v), S::mul(v, v), v));
    u = S::max(S::min(u, umax), umin);
    const V t = S::sub(one, S::div(two, S::add(exp_v(S::add(u, u)), one)));
    S::store(x + i, S::mul(S::mul(half, v), S::add(one, t)));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

// Value rows (a head's, one after another in the cache, or rows of a batch
// `stride` floats apart) are a few cache lines each: runs too short for the
// hardware prefetchers to pick up in time, so the rows kPrefetchRows ahead
// are asked for explicitly.
constexpr int64_t kPrefetchRows = 8;

// Keys and values in the KV cache are float32, or IEEE half (f16 bits) in
// a cache of half the size: read as float32 vectors / scalars either way.
inline V load_elem(const float* p) { return S::load(p); }
inline V load_elem(const uint16_t* p) { return S::load_f16(p); }
inline float elem(float x) { return x; }
inline float elem(uint16_t h) { return S::f16_scalar(h); }
template <class E>
inline void prefetch_elems(const E* row, int64_t n) {
  for (int64_t i = 0; i < n; i += 64 / static_cast<int64_t>(sizeof(E)))
    prefetch_l2(row + i);
}

// Scores of one query against kKeyTile × G keys kept in G consecutive tiles
// (kernels.h): for each dimension i, q[i] times the tiles' row i, in two
// interleaved sets of accumulators (even and odd i) so that enough FMA
// chains are in flight. Bound by reading the keys (each is used once).
template <int G, class E>
inline void score_tiles(const float* q, const E* tiles, int64_t d, float scale, float* out) {
  constexpr int kRowVecs = static_cast<int>(kKeyTile) / L;
  constexpr int N = G * kRowVecs;
  const int64_t tile_floats = d * kKeyTile;
  V a[2][N];
  for (int c = 0; c < N; ++c) a[0][c] = a[1][c] = S::zero();
  // The next G tiles' row i, G tiles ahead: keys are read once, from
  // memory, in short runs (a head's keys of one sequence) that the hardware
  // prefetchers are slow to pick up.
  constexpr int64_t kElemsPerLine = 64 / static_cast<int64_t>(sizeof(E));
  auto row = [&](V* acc, int64_t i) {
    const V qi = S::set1(q[i]);
    if ((i * kKeyTile) % kElemsPerLine == 0)
      for (int g = 0; g < G; ++g)
        prefetch_l2(tiles + (G + g) * tile_floats + i * kKeyTile);
    for (int g = 0; g < G; ++g)
      for (int v = 0; v < kRowVecs; ++v) {
        const E* p = tiles + g * tile_floats + i * kKeyTile + v * L;
        acc[g * kRowVecs + v] = S::fma(qi, load_elem(p), acc[g * kRowVecs + v]);
      }
  };
  int64_t i = 0;
  for (; i + 2 <= d; i += 2) {
    row(a[0], i);
    row(a[1], i + 1);
  }
  if (i < d) row(a[0], i);
  const V sv = S::set1(scale);
  for (int c = 0; c < N; ++c) S::store(out + c * L, S::mul(S::add(a[0][c], a[1][c]), sv));
}

// Scores of MQ queries (rows ldq apart) against one tile: each row of the
// tile is loaded once and multiplied with every query's value at that
// dimension, MQ independent chains. out: MQ rows of kKeyTile.
template <int MQ, class E>
inline void score_tile_rows(const float* q, int64_t ldq, const E* tile, int64_t d, float scale, float* out) {
  constexpr int kRowVecs = static_cast<int>(kKeyTile) / L;
  V a[MQ][kRowVecs];
  for (int r = 0; r < MQ; ++r)
    for (int v = 0; v < kRowVecs; ++v) a[r][v] = S::zero();
  for (int64_t i = 0; i < d; ++i) {
    V t[kRowVecs];
    for (int v = 0; v < kRowVecs; ++v) t[v] = load_elem(tile + i * kKeyTile + v * L);
    for (int r = 0; r < MQ; ++r) {
      const V qi = S::set1(q[r * ldq + i]);
      for (int v = 0; v < kRowVecs; ++v) a[r][v] = S::fma(qi, t[v], a[r][v]);
    }
  }
  const V sv = S::set1(scale);
  for (int r = 0; r < MQ; ++r)
    for (int v = 0; v < kRowVecs; ++v) S::store(out + r * kKeyTile + v * L, S::mul(a[r][v], sv));
}

// Queries taken together: 8 with 16 lanes, 4 with 8 (16 registers).
constexpr int kScoreQueries = L == 16 ? 8 : 4;

template <int MQ, class E>
void score_rows(const float* q, int64_t ldq, int64_t mq, const E* tile, int64_t d, float scale, float* out) {
  if constexpr (MQ > 1) {
    if (mq < MQ) return score_rows<MQ - 1, E>(q, ldq, mq, tile, d, scale, out);
  }
  score_tile_rows<MQ, E>(q, ldq, tile, d, scale, out);
}

template <class E>
void scores_tiled(const float* q, int64_t ldq, int64_t m, const E* tiles, int64_t first, int64_t n, int64_t d,
                  float scale, float* scores, int64_t lds) {
  // One query: four tiles at a time with 16 lanes, two with 8 (eight chains
  // of FMAs). Several: kScoreQueries of them per tile.
  constexpr int G = L / 4;
  constexpr int64_t kBuf = (G > kScoreQueries ? G : kScoreQueries) * kKeyTile;
  alignas(64) float buf[kBuf];
  const int64_t end = first + n;
  for (int64_t r0 = 0; r0 < m; r0 += kScoreQueries) {
    const int64_t mq = min_i(kScoreQueries, m - r0);
    for (int64_t t = first / kKeyTile; t * kKeyTile < end;) {
      int64_t g = 1;
      if (m == 1) {
        g = min_i(G, (end - t * kKeyTile + kKeyTile - 1) / kKeyTile);
        if (g == G)
          score_tiles<G, E>(q, tiles + t * d * kKeyTile, d, scale, buf);
        else
          for (int64_t u = 0; u < g; ++u) score_tiles<1, E>(q, tiles + (t + u) * d * kKeyTile, d, scale, buf + u * kKeyTile);
      } else {
        score_rows<kScoreQueries, E>(q + r0 * ldq, ldq, mq, tiles + t * d * kKeyTile, d, scale, buf);
      }
      // Keep the lanes of keys [first, end); buf holds g consecutive tiles
      // of one query, or one tile of mq queries.
      const int64_t lo = t * kKeyTile < first ? first : t * kKeyTile, hi = min_i(end, (t + g) * kKeyTile);
      for (int64_t r = 0; r < mq; ++r)
        for (int64_t s = lo; s < hi; ++s) scores[(r0 + r) * lds + s - first] = buf[r * kKeyTile + s - t * kKeyTile];
      t += g;
    }
  }
}

// out[0, NV × L) += Σ p[j] values[j] for one query, keeping the output in
// registers while the values stream past; even and odd j go to two sets of
// accumulators, so that more FMA chains are in flight than one per output
// vector.
template <int NV, class E>
inline void values_block(const float* p, const E* values, int64_t stride, int64_t n, float* out) {
  V acc[NV], odd[NV];
  for (int c = 0; c < NV; ++c) {
    acc[c] = S::load(out + c * L);
    odd[c] = S::zero();
  }
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    if (j + kPrefetchRows < n) prefetch_elems(values + (j + kPrefetchRows) * stride, NV * L);
    if (j + 1 + kPrefetchRows < n) prefetch_elems(values + (j + 1 + kPrefetchRows) * stride, NV * L);
    const V p0 = S::set1(p[j]), p1 = S::set1(p[j + 1]);
    const E* v = values + j * stride;
    for (int c = 0; c < NV; ++c) {
      acc[c] = S::fma(p0, load_elem(v + c * L), acc[c]);
      odd[c] = S::fma(p1, load_elem(v + stride + c * L), odd[c]);
    }
  }
  if (j < n)
    for (int c = 0; c < NV; ++c) acc[c] = S::fma(S::set1(p[j]), load_elem(values + j * stride + c * L), acc[c]);
  for (int c = 0; c < NV; ++c) S::store(out + c * L, S::add(acc[c], odd[c]));
}

// The same for MQ queries (p rows ldp apart, out rows ldo apart) sharing
// each load of the values: MQ × NV chains.
template <int MQ, int NV, class E>
inline void values_block_rows(const float* p, int64_t ldp, const E* values, int64_t stride, int64_t n, float* out,
                              int64_t ldo) {
  V acc[MQ][NV];
  for (int r = 0; r < MQ; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = S::load(out + r * ldo + c * L);
  for (int64_t j = 0; j < n; ++j) {
    V v[NV];
    for (int c = 0; c < NV; ++c) v[c] = load_elem(values + j * stride + c * L);
    for (int r = 0; r < MQ; ++r) {
      const V pj = S::set1(p[r * ldp + j]);
      for (int c = 0; c < NV; ++c) acc[r][c] = S::fma(pj, v[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MQ; ++r)
    for (int c = 0; c < NV; ++c) S::store(out + r * ldo + c * L, acc[r][c]);
}

// Output blocks of up to 8 vectors (4 with 8 lanes, whose ISA has 16
// registers), each over all n values.
template <class E>
void values_one(const float* p, const E* values, int64_t stride, int64_t n, int64_t d, float* out) {
  constexpr int kMax = L == 16 ? 8 : 4;
  int64_t i = 0;
  for (; i + kMax * L <= d; i += kMax * L) values_block<kMax, E>(p, values + i, stride, n, out + i);
  switch ((d - i) / L) {
    case 7: values_block<7, E>(p, values + i, stride, n, out + i); break;
    case 6: values_block<6, E>(p, values + i, stride, n, out + i); break;
    case 5: values_block<5, E>(p, values + i, stride, n, out + i); break;
    case 4: values_block<4, E>(p, values + i, stride, n, out + i); break;
    case 3: values_block<3, E>(p, values + i, stride, n, out + i); break;
    case 2: values_block<2, E>(p, values + i, stride, n, out + i); break;
    case 1: values_block<1, E>(p, values + i, stride, n, out + i); break;
    default: break;
  }
  for (int64_t k = i + (d - i) / L * L; k < d; ++k)
    for (int64_t j = 0; j < n; ++j) out[k] += p[j] * elem(values[j * stride + k]);
}

// Queries taken together, and output vectors per pass: 4 × 4 with 16
// lanes (16 accumulators), 2 × 4 with 8.
constexpr int kValueQueries = L == 16 ? 4 : 2;
constexpr int kValueVecs = 4;

template <int MQ, class E>
void values_rows(const float* p, int64_t ldp, const E* values, int64_t stride, int64_t n, int64_t d, float* out,
                 int64_t ldo) {
  int64_t i = 0;
  for (; i + kValueVecs * L <= d; i += kValueVecs * L)
    values_block_rows<MQ, kValueVecs, E>(p, ldp, values + i, stride, n, out + i, ldo);
  for (; i + L <= d; i += L) values_block_rows<MQ, 1, E>(p, ldp, values + i, stride, n, out + i, ldo);
  for (; i < d; ++i)
    for (int r = 0; r < MQ; ++r)
      for (int64_t j = 0; j < n; ++j) out[r * ldo + i] += p[r * ldp + j] * elem(values[j * stride + i]);
}

template <class E>
void weighted_values(const float* p, int64_t ldp, int64_t m, const E* values, int64_t stride, int64_t n, int64_t d,
                     float* out, int64_t ldo) {
  int64_t r = 0;
  for (; r + kValueQueries <= m; r += kValueQueries)
    values_rows<kValueQueries, E>(p + r * ldp, ldp, values, stride, n, d, out + r * ldo, ldo);
  for (; r < m; ++r) values_one<E>(p + r * ldp, values, stride, n, d, out + r * ldo);
}


// Twelve independent chains hide the FMA latency (4 cycles on two ports).
double fma_loop(int64_t iters) {
  constexpr int kChains = 12;
  V a[kChains];
  for (int c = 0; c < kChains; ++c) a[c] = S::set1(0.001f * c);
  const V m = S::set1(0.999f), k = S::set1(0.0001f);
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) a[c] = S::fma(a[c], m, k);
  V total = S::zero();
  for (int c = 0; c < kChains; ++c) total = S::add(total, a[c]);
  volatile float sink = S::hsum(total);  // keeps the loop from being optimised away
  (void)sink;
  return static_cast<double>(iters) * kChains * 2 * L;
}

const KernelSet kTable = {
    S::kName,   S::kIsa,        kPanelWidth, S::kPanelRows, gemm_direct,    pack_panel,       gemm_panel,
    quantize_act, gemm_quant,   nullptr,     nullptr,
    dot,        axpy,           add,         layer_norm_row, softmax,          gelu_tanh,
    weighted_values<float>, scores_tiled<float>, weighted_values<uint16_t>, scores_tiled<uint16_t>, to_f16, sum, fma_loop,      nullptr,
    false, nullptr, nullptr, nullptr, nullptr,
};
