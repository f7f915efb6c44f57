// Integer dot products for q8 and q4 weights on CPUs with AVX512-VNNI:
// included (inside its namespace) by kernels_avx512.cpp only, after
// int8_avx2.h, whose helpers it uses.
//
// Why not int8_avx2.h's kernel with vpdpbusd on 256 bits: there each block
// and pair of rows costs a dot product, a conversion and a multiply-add into
// an accumulator of 8 lanes, plus for q8 a vpsignb, and one row of x chains
// every block through one FMA (4 cycles on Zen 5): one-row q4 blocks took
// 1.45 ns, bound by that chain, not by memory, and batched q8 0.9 ns per
// block and pair. Here a 512-bit vector holds two consecutive blocks of a
// row (lanes 0-7 block b, lanes 8-15 block b + 1), so every instruction does
// the work of two blocks and each chain step covers two blocks.
//
// q8 weights are signed, and vpdpbusd multiplies unsigned by signed bytes.
// Instead of moving the weights' signs onto x (a vpsignb per pair), x is made
// unsigned, x + 128 (one xor per row of x), and the dot product starts from
// -128 Σw, computed once per weight block (a vpdpbusd of 128s and a
// subtraction) and shared by all rows of x: Σ (x + 128) w - 128 Σ w = Σ x w,
// exactly, in 32 bits.
//
// Every (row of x, weight row) pair is summed in its own 16-lane vector in
// the same order whatever tile it falls in (one row of x takes tiles of
// 1 × 1), so, as with int8_avx2.h, a row of y has the same bits at every batch
// size and thread count.
//
// Requires: <vector>, int8_avx2.h (act_blocks, signs_q8) and the
// AVX-512 F / BW / VNNI intrinsics.

namespace vnni512 {

// Lanes 0-7 from lo, 8-15 from hi.
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

// Float lanes [a × 8, b × 8] from lanes a and b of v (4 lanes).
template <int A, int B>
inline __m512 halves(__m128 v) {
  const __m512i idx = _mm512_setr_epi32(A, A, A, A, A, A, A, A, B, B, B, B, B, B, B, B);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

// The bytes of blocks b and b + 1 of a weight row (q4: nibbles 0-15, q8:
// int8), or block b and zeros when kPair is false (a row's odd last block).
template <bool kQ4, bool kPair>
inline __m512i weight_bytes(const uint8_t* row, int64_t b) {
  if constexpr (kQ4) {
    // [q_b, q_b, q_b1, q_b1] (16 bytes each); the second copy of each takes
    // the high nibbles.
    const auto* blk = reinterpret_cast<const quant::BlockQ4*>(row) + b;
    const __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].q)));
    __m512i v = _mm512_zextsi256_si512(lo);
    if constexpr (kPair)
      v = join(lo, _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].q))));
    return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(15));
  } else {
    const __m256i lo = signs_q8(row, b);
    if constexpr (!kPair) return _mm512_zextsi256_si512(lo);
    else return join(lo, signs_q8(row, b + 1));
  }
}

// The scales of blocks b and b + 1 of a weight row as 4 floats: q8 [d_b, 0,
// d_b1, 0], q4 [d_b, m_b, d_b1, m_b1] (the first four bytes of a block).
template <bool kQ4, bool kPair>
inline __m128 weight_scales2(const uint8_t* row, int64_t b) {
  constexpr int64_t kBytes = kQ4 ? sizeof(quant::BlockQ4) : sizeof(quant::BlockQ8);
  uint32_t s0 = 0, s1 = 0;
  __builtin_memcpy(&s0, row + b * kBytes, kQ4 ? 4 : 2);
  if constexpr (kPair) __builtin_memcpy(&s1, row + (b + 1) * kBytes, kQ4 ? 4 : 2);
  return _mm_cvtph_ps(_mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), 0, 0));
}

// Two activation blocks of one row as the tiles read them, so that every
// load is one aligned vector and no shuffle is repeated per weight row: the
// 64 bytes (q8: made unsigned, x + 128), d and s each in 8 lanes per block.
// A row's odd last block is paired with zeros.
struct alignas(64) ActStep {
  int8_t q[64];
  float d[16];
  float s[16];
};

template <bool kQ4>
inline void pack_act_row(const quant::BlockAct* x, int64_t nb, ActStep* out) {
  for (int64_t b = 0; b < nb; b += 2) {
    ActStep& st = out[b / 2];
    const bool pair = b + 1 < nb;
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q));
    const __m256i q1 = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].q)) : _mm256_setzero_si256();
    __m512i q = join(q0, q1);
    if constexpr (!kQ4) q = _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));
    _mm512_store_si512(st.q, q);
    const __m256 d1 = _mm256_set1_ps(pair ? x[b + 1].d : 0.0f), s1 = _mm256_set1_ps(pair ? x[b + 1].s : 0.0f);
    _mm256_store_ps(st.d, _mm256_set1_ps(x[b].d));
    _mm256_store_ps(st.d + 8, d1);
    _mm256_store_ps(st.s, _mm256_set1_ps(x[b].s));
    _mm256_store_ps(st.s + 8, s1);
  }
}

// One step (blocks b, b + 1) of an MR × NR tile over packed activation rows
// `lda` steps apart. With kPair false only block b of the weights is read:
// their upper lanes are zero, and so are their scales.
template <bool kQ4, int MR, int NR, bool kPair>
inline void tile_step(const ActStep* x, int64_t lda, const uint8_t* const* rows, int64_t b,
                      __m512 (&acc)[MR][NR], __m512 (&mins)[MR][NR]) {
  __m512i wq[NR], start[NR];
  __m512 wd[NR], wm[NR];
#pragma GCC unroll 8
  for (int c = 0; c < NR; ++c) {
    wq[c] = weight_bytes<kQ4, kPair>(rows[c], b);
    const __m128 s = weight_scales2<kQ4, kPair>(rows[c], b);
    wd[c] = halves<0, 2>(s);
    if constexpr (kQ4) {
      wm[c] = halves<1, 3>(s);
      start[c] = _mm512_setzero_si512();
    } else {
      // -128 Σw per group of four bytes: the correction for x + 128.
      start[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), wq[c]));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const ActStep& xa = x[r * lda + b / 2];
    const __m512i xq = _mm512_load_si512(xa.q);
    const __m512 xd = _mm512_load_ps(xa.d);
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      // q4: unsigned nibbles × signed x; q8: unsigned x + 128 × signed w.
      const __m512i p = kQ4 ? _mm512_dpbusd_epi32(start[c], wq[c], xq) : _mm512_dpbusd_epi32(start[c], xq, wq[c]);
      acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd[c], xd), acc[r][c]);
      if constexpr (kQ4) mins[r][c] = _mm512_fmadd_ps(wm[c], _mm512_load_ps(xa.s), mins[r][c]);
    }
  }
}

template <bool kQ4, int MR, int NR>
inline void quant_tile(const ActStep* x, int64_t lda, const WeightRows& w, int64_t j, float* y, int64_t ldy) {
  const int64_t nb = act_blocks(w.cols);
  const uint8_t* rows[NR];
  for (int c = 0; c < NR; ++c) rows[c] = w.data + static_cast<size_t>(j + c) * w.row_bytes;
  __m512 acc[MR][NR], mins[MR][NR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) acc[r][c] = mins[r][c] = _mm512_setzero_ps();
  constexpr int64_t kBlockBytes = kQ4 ? sizeof(quant::BlockQ4) : sizeof(quant::BlockQ8);
  // The next tile's rows, at the blocks this one is at (see int8_avx2.h).
  const size_t ahead = NR * w.row_bytes;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    for (int c = 0; c < NR; ++c)
      for (int64_t off = 0; off < 2 * kBlockBytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(rows[c] + ahead + b * kBlockBytes + off), _MM_HINT_T0);
    tile_step<kQ4, MR, NR, true>(x, lda, rows, b, acc, mins);
  }
  if (b < nb) tile_step<kQ4, MR, NR, false>(x, lda, rows, b, acc, mins);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      float sum = _mm512_reduce_add_ps(acc[r][c]);
      if constexpr (kQ4) {
        // Every lane of a half holds that half's sum of m_w s_x.
        alignas(64) float m[16];
        _mm512_store_ps(m, mins[r][c]);
        sum += m[0] + m[8];
      }
      y[r * ldy + c] = sum;
    }
}

// Rows of x in tiles of 8 (then 4, then the rest): a weight block's bytes,
// scales and -128 Σw are prepared once per tile, so the more rows share them
// the fewer instructions per pair (8 × 2 tiles, 16 accumulators of the 32
// registers: q8 at 8 rows 0.32 -> 0.28 ns per block and pair against 4 × 2,
// 125M q8 batch 8 decode +5 %, 4 alternating runs, Zen 5).
template <bool kQ4, int NR>
inline void quant_rows(const ActStep* x, int64_t lda, int64_t m, const WeightRows& w, int64_t j, float* y,
                       int64_t ldy) {
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) quant_tile<kQ4, 8, NR>(x + i * lda, lda, w, j, y + i * ldy, ldy);
  for (; i + 4 <= m; i += 4) quant_tile<kQ4, 4, NR>(x + i * lda, lda, w, j, y + i * ldy, ldy);
  switch (m - i) {
    case 3: quant_tile<kQ4, 3, NR>(x + i * lda, lda, w, j, y + i * ldy, ldy); break;
    case 2: quant_tile<kQ4, 2, NR>(x + i * lda, lda, w, j, y + i * ldy, ldy); break;
    case 1: quant_tile<kQ4, 1, NR>(x + i * lda, lda, w, j, y + i * ldy, ldy); break;
    default: break;
  }
}

// The activation rows are packed once per call (a thread's share of the
// weight rows, 16 rows or more), then, as in int8_avx2.h's gemm_quant_fmt:
// one weight row at a time for one row of x (one sequential stream per
// thread), two for several.
template <bool kQ4>
void gemm_quant_fmt(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  const int64_t nb = act_blocks(w.cols), lda = (nb + 1) / 2;
  thread_local std::vector<ActStep> packed;
  if (packed.size() < static_cast<size_t>(m * lda)) packed.resize(static_cast<size_t>(m * lda));
  for (int64_t i = 0; i < m; ++i) pack_act_row<kQ4>(x + i * ldx, nb, packed.data() + i * lda);
  const ActStep* xp = packed.data();
  int64_t j = 0;
  if (m > 1)
    for (; j + 2 <= w.rows; j += 2) quant_rows<kQ4, 2>(xp, lda, m, w, j, y + j, ldy);
  for (; j < w.rows; ++j) quant_rows<kQ4, 1>(xp, lda, m, w, j, y + j, ldy);
}

inline void gemm_quant(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y,
                       int64_t ldy) {
  if (w.format == WeightFormat::Q4)
    gemm_quant_fmt<true>(x, ldx, m, w, y, ldy);
  else
    gemm_quant_fmt<false>(x, ldx, m, w, y, ldy);
}

}  // namespace vnni512
