// Integer dot products for q8 and q4 weights, with AVX2 instructions on
// 256-bit vectors: included (inside their own namespaces) by both
// kernels_avx2.cpp and kernels_avx512.cpp: the AVX-512 set on CPUs without
// AVX512-VNNI runs exactly the code the AVX2 set tests here (with VNNI it
// runs int8_avx512.h, which uses this file's helpers).
//
// Why: widening every weight to float32 costs about four instructions per
// eight weights, which at q8 and q4 is slower than memory delivers them.
// Instead the activation row is quantized to int8 once per call (blocks of
// 32, quant::BlockAct), and each block of 32 weights is one integer dot
// product: vpmaddubsw (unsigned × signed bytes, pairs summed into 16 bits)
// and vpmaddwd (pairs summed into 32 bits), then one float multiply-add with
// the two blocks' scales. vpmaddubsw needs one unsigned operand: q4 nibbles
// are unsigned already; for q8 the weight's absolute value is used and its
// sign moved onto the activation (vpsignb). No 16-bit sum can saturate:
// |q_x| <= 127 and |q_w| <= 128 give at most 2 · 128 · 127 = 32512.
//
// Each (weight row, activation row) pair is summed in its own vector in
// block order, whatever the tile it is computed in, so a row of y is bit for
// bit the same at every batch size and thread count (kernels::linear uses
// this path below kQuantPanelMinRows rows).
//
// Requires: <immintrin.h>, <utility>, kernels/kernel_set.h,
// kernels/quant_blocks.h, kernels/avx2_common.h.

inline int64_t act_blocks(int64_t cols) { return (cols + 31) / 32; }

// Sums of four products u[4i..4i+3] · s[4i..4i+3] (unsigned × signed bytes)
// in eight 32-bit lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// One block of 32 floats, as quant::quantize_row_act computes it.
inline void quantize_act_block(const float* v, quant::BlockAct* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
               v3 = _mm256_loadu_ps(v + 24);
  // maxps returns its second operand when either is NaN: the running
  // maximum goes second, so that a NaN is skipped, as quantize_row_act's
  // std::max skips it.
  __m256 a = _mm256_setzero_ps();
  for (const __m256 v : {v0, v1, v2, v3}) a = _mm256_max_ps(_mm256_andnot_ps(sign, v), a);
  const float d = hmax_256(a) / 127.0f;
  const __m256 inv = _mm256_set1_ps(d > 0 ? 1.0f / d : 0.0f);
  // cvtps2dq rounds to nearest even (the default MXCSR mode), as nearbyint.
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inv)),
                i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, inv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, inv));
  // The packs work within 128-bit lanes; the permutation puts the 32 bytes
  // back in order.
  const __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
  const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->q), q);
  const __m256i sum16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
  const int32_t sum = hsum_epi32(_mm256_madd_epi16(sum16, _mm256_set1_epi16(1)));
  out->d = d;
  out->s = d * static_cast<float>(sum);
}

// A row of `cols` floats as blocks of 32: blocks(v, n, out) quantizes the n
// whole blocks at v; a row's last, partial block goes through it as a
// zero-padded copy (as quant::quantize_row_act pads it).
template <class Blocks>
inline void quantize_row_blocks(const float* x, int64_t cols, quant::BlockAct* out, Blocks blocks) {
  const int64_t full = cols / 32;
  blocks(x, full, out);
  if (full * 32 < cols) {
    alignas(64) float tail[32] = {};
    for (int64_t k = full * 32; k < cols; ++k) tail[k - full * 32] = x[k];
    blocks(tail, 1, out + full);
  }
}

void quantize_act(const float* x, int64_t cols, quant::BlockAct* out) {
  quantize_row_blocks(x, cols, out, [](const float* v, int64_t n, quant::BlockAct* o) {
    for (int64_t b = 0; b < n; ++b) quantize_act_block(v + b * 32, o + b);
  });
}

// The 32 signed weights of q8 block b of a row.
inline __m256i signs_q8(const uint8_t* row, int64_t b) {
  const auto* blk = reinterpret_cast<const quant::BlockQ8*>(row) + b;
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->q));
}

// The unsigned operand of vpmaddubsw for block b of a row: q4 nibbles
// (elements 0-15 the low nibbles, 16-31 the high ones), or |q| for q8 (whose
// signs `signs_q8` gives).
template <bool kQ4>
inline __m256i unsigned_weights(const uint8_t* row, int64_t b) {
  if constexpr (kQ4) {
    const auto* blk = reinterpret_cast<const quant::BlockQ4*>(row) + b;
    const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->q)));
    return _mm256_and_si256(_mm256_srlv_epi64(raw, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(15));
  } else {
    return _mm256_abs_epi8(signs_q8(row, b));
  }
}

// Scale(s) of block b of one row into lane C of h (C must be a constant:
// the insert instructions take it as an immediate).
template <bool kQ4, int C>
inline __m128i insert_scales(__m128i h, const uint8_t* row, int64_t b) {
  if constexpr (kQ4) {
    uint32_t dm;
    __builtin_memcpy(&dm, row + b * sizeof(quant::BlockQ4), 4);
    return _mm_insert_epi32(h, static_cast<int>(dm), C);
  } else {
    uint16_t d;
    __builtin_memcpy(&d, row + b * sizeof(quant::BlockQ8), 2);
    return _mm_insert_epi16(h, d, C);
  }
}

// The float scales of block b of NR rows, converted together (one
// vcvtph2ps): q8 lanes [d0, d1, ...]; q4 lanes [d0, m0, d1, m1, ...] (d and
// m are the block's first four bytes).
template <bool kQ4, int NR>
inline __m256 weight_scales(const uint8_t* const* rows, int64_t b) {
  static_assert(NR <= 4);
  __m128i h = _mm_setzero_si128();
  [&]<int... C>(std::integer_sequence<int, C...>) {
    ((h = insert_scales<kQ4, C>(h, rows[C], b)), ...);
  }(std::make_integer_sequence<int, NR>{});
  return _mm256_cvtph_ps(h);
}

// The scales of block b of one weight row times those of one activation
// block, in the low lanes of a 128-bit vector: q8 [d_w d_x, ...], q4
// [d_w d_x, m_w s_x, ...]. The same products as the wide version's lanes.
template <bool kQ4>
inline __m128 one_row_scales(const uint8_t* row, int64_t b, const quant::BlockAct& xb) {
  const __m128 w = _mm_cvtph_ps(insert_scales<kQ4, 0>(_mm_setzero_si128(), row, b));
  const __m128 xs = kQ4 ? _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&xb.d))) : _mm_load_ss(&xb.d);
  return _mm_mul_ps(w, xs);
}

// MR activation rows × NR weight rows over all blocks. Per block and pair:
// the integer dot product, converted and scaled by d_w d_x into the pair's
// vector. The scale products come from one multiplication per activation
// row (weight scales × [d_x, s_x] pairs); for q4 that product's odd lanes,
// m_w s_x, are summed as they are in `mins` and added at the end.
template <bool kQ4, int MR, int NR>
inline void quant_tile(const quant::BlockAct* x, int64_t ldx, const WeightRows& w, int64_t j, float* y,
                       int64_t ldy) {
  // Weight rows in groups of up to 4, whose scales one conversion handles.
  constexpr int NG = NR < 4 ? NR : 4, G = NR / NG;
  static_assert(NR % NG == 0);
  const int64_t nb = act_blocks(w.cols);
  const uint8_t* rows[NR];
  for (int c = 0; c < NR; ++c) rows[c] = w.data + static_cast<size_t>(j + c) * w.row_bytes;
  __m256 acc[MR][NR], mins[MR][G];
  for (int r = 0; r < MR; ++r) {
    for (int g = 0; g < G; ++g) mins[r][g] = _mm256_setzero_ps();
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  constexpr int64_t kBlockBytes = kQ4 ? sizeof(quant::BlockQ4) : sizeof(quant::BlockQ8);
  // The next tile's rows, at the block this one is at: short rows (the
  // vocabulary projection has 2048 columns) end before the hardware
  // prefetcher has caught on to the streams.
  const size_t ahead = NR * w.row_bytes;
  for (int64_t b = 0; b < nb; ++b) {
    for (int c = 0; c < NR; ++c)
      prefetch_l2(rows[c] + ahead + b * kBlockBytes);
    if constexpr (NR == 1) {
      // One weight row (decode): the scale is broadcast from a register.
      // The store + broadcast-load round trip below (which saves registers
      // when a tile has many pairs) lengthens each block's dependency chain,
      // and with one pair per block nothing hides it: one-row q4 blocks took
      // 1.6 ns instead of 2.0 (L2-resident, Zen 3).
      __m256i sign = _mm256_setzero_si256(), u;
      if constexpr (kQ4) {
        u = unsigned_weights<true>(rows[0], b);
      } else {
        sign = signs_q8(rows[0], b);
        u = _mm256_abs_epi8(sign);
      }
      for (int r = 0; r < MR; ++r) {
        const quant::BlockAct& xb = x[r * ldx + b];
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.q));
        const __m128 scale = one_row_scales<kQ4>(rows[0], b, xb);
        if constexpr (kQ4) mins[r][0] = _mm256_add_ps(mins[r][0], _mm256_zextps128_ps256(scale));
        const __m256i p = dot_u8s8(u, kQ4 ? xq : _mm256_sign_epi8(xq, sign));
        acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcastss_ps(scale), acc[r][0]);
      }
      continue;
    }
    __m256 wscale[G];
    for (int g = 0; g < G; ++g) wscale[g] = weight_scales<kQ4, NG>(rows + g * NG, b);
    __m256i u[NR], sign[NR];
    for (int c = 0; c < NR; ++c) {
      if constexpr (!kQ4) sign[c] = signs_q8(rows[c], b);
      u[c] = kQ4 ? unsigned_weights<true>(rows[c], b) : _mm256_abs_epi8(sign[c]);
    }
    for (int r = 0; r < MR; ++r) {
      const quant::BlockAct& xb = x[r * ldx + b];
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.q));
      // [d_x, s_x] pairs (q4) or d_x (q8) in every lane, times the weight
      // scales; each pair's d_w d_x is then broadcast from memory (a load,
      // not a shuffle with an index register: with MR × NR accumulators
      // live, registers are what runs out).
      const __m256 xscale = kQ4 ? _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(&xb.d)))
                                : _mm256_broadcast_ss(&xb.d);
      alignas(32) float sc[8 * G];
      for (int g = 0; g < G; ++g) {
        const __m256 scale = _mm256_mul_ps(wscale[g], xscale);
        if constexpr (kQ4) mins[r][g] = _mm256_add_ps(mins[r][g], scale);
        _mm256_store_ps(sc + 8 * g, scale);
      }
      for (int c = 0; c < NR; ++c) {
        const __m256i sx = kQ4 ? xq : _mm256_sign_epi8(xq, sign[c]);
        const __m256i p = dot_u8s8(u[c], sx);
        const float* d = sc + 8 * (c / NG) + (kQ4 ? 2 * (c % NG) : c % NG);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(d), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    alignas(32) float m[8 * G];
    for (int g = 0; g < G; ++g) _mm256_store_ps(m + 8 * g, mins[r][g]);
    for (int c = 0; c < NR; ++c)
      y[r * ldy + c] = hsum_256(acc[r][c]) + (kQ4 ? m[8 * (c / NG) + 2 * (c % NG) + 1] : 0.0f);
  }
}

template <bool kQ4, int NR>
inline void quant_rows(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, int64_t j, float* y,
                       int64_t ldy) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) quant_tile<kQ4, 4, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy);
  switch (m - i) {
    case 3: quant_tile<kQ4, 3, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy); break;
    case 2: quant_tile<kQ4, 2, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy); break;
    case 1: quant_tile<kQ4, 1, NR>(x + i * ldx, ldx, w, j, y + i * ldy, ldy); break;
    default: break;
  }
}

// Weight rows in the outer loop, so a tile of them stays in L1 while the
// activation rows (which the caller keeps to an L2-sized chunk) pass by.
// Several rows of x take two weight rows at a time; one row of x takes one,
// so that a thread reads its weights as one sequential stream, which the
// hardware prefetchers follow best: tiles of 4 weight rows (4 interleaved
// streams, each only a row long) read the 768-column rows of gpt-neo-125M
// markedly slower (125M q8 decoded 94-99 tokens/s with them against 105-124
// with one row, 4 alternating runs each, Zen 3; at the 2048-column rows of
// 1.3B the difference was within noise).
template <bool kQ4>
void gemm_quant_fmt(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  int64_t j = 0;
  if (m > 1)
    for (; j + 2 <= w.rows; j += 2) quant_rows<kQ4, 2>(x, ldx, m, w, j, y + j, ldy);
  for (; j < w.rows; ++j) quant_rows<kQ4, 1>(x, ldx, m, w, j, y + j, ldy);
}

void gemm_quant(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  if (w.format == WeightFormat::Q4)
    gemm_quant_fmt<true>(x, ldx, m, w, y, ldy);
  else
    gemm_quant_fmt<false>(x, ldx, m, w, y, ldy);
}
