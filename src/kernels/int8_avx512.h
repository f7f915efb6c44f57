// Integer dot products for q8 and q4 weights on CPUs with AVX512-VNNI:
// included (inside its namespace) by kernels_avx512.cpp only, after
// int8_avx2.h, whose helpers it uses.
//
// Why not int8_avx2.h's kernel with vpdpbusd on 256 bits: there each block
// and pair of rows costs a dot product, a conversion and a multiply-add into
// an accumulator of 8 lanes, plus for q8 a vpsignb, and one row of x chains
// every block through one FMA (4 cycles on Zen 5): one-row q4 blocks took
// 1.45 ns, bound by that chain, not by memory, and batched q8 0.9 ns per
// block and pair.
//
// Here rows are taken eight blocks at a time (octet_step): the four 512-bit
// vectors of an octet hold its 256 bytes so that lanes 2β and 2β + 1 belong
// to block β, and four vpdpbusd leave each lane with sixteen products of one
// block. One conversion and one multiply-add then scale eight blocks at
// once: per (row of x, weight row) and 256 weights, 4 dot products and 3
// float instructions (the pair steps that take a row's last blocks, fewer
// than eight, spend 4 and 12 on the same: lanes 0-7 block b, 8-15 block
// b + 1, each lane four products). Models keep their weights' octets so
// arranged (quant::Layout::Octets, done once at load); weights in Blocks
// are rearranged per tile (an 8 × 4 transpose of qwords), shared by the
// tile's rows of x.
//
// vpdpbusd multiplies unsigned by signed bytes. In the octets the weights
// are the unsigned operand: q4 nibbles are, q8 weights are made so, w + 128
// (an xor), and each lane of x starts its sum at -128 Σx, packed with x once
// per call: Σ (w + 128) x - 128 Σ x = Σ w x, exactly, in 32 bits. In the
// pair steps x is made unsigned instead (x + 128) and each weight block's
// sum starts from -128 Σw.
//
// Every (row of x, weight row) pair is summed in its own 16-lane vector in
// the same order whatever tile it falls in (one row of x takes tiles of
// 1 × 1), so, as with int8_avx2.h, a row of y has the same bits at every batch
// size and thread count.
//
// Requires: <vector>, int8_avx2.h (act_blocks, signs_q8, quantize_row_blocks) and the
// AVX-512 F / BW / VNNI intrinsics.

namespace vnni512 {

// Blocks per octet step (octet_step below); the pair steps take the rest.
// (The octets of quant::Layout::Octets are these.)
constexpr int64_t kOctet = quant::kOctetBlocks;

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
    const ActStep& xa = x[r * lda + (b % kOctet) / 2];
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

// An octet of one row of x (see the top of the file): lane 2β + h of vector
// j holds dword 2j + h of block β, i.e. vector j is the eight blocks' qword
// j; the weights are arranged the same way per tile (weight_octet).
// Measured against pairs only (`linear`, one thread, Zen 5, weights in L2),
// ns per block and pair: q8 8 rows 0.30 -> 0.22, q4 8 rows 0.40 -> 0.21, q4
// one row 0.80 -> 0.57, q8 one row 0.90 -> 0.69; 1.3B q4 decode 40 -> 46-48
// tokens/s, 125M q8 decode 208-212 -> 242-263 (2 alternating runs each).
struct alignas(64) ActOct {
  int8_t q[4][64];  // vector j: qword j of each of the eight blocks
  float d[16];      // d_x of the lane's block
  // One or the other (384 bytes a row and octet, not 448: with the
  // 3072-column projection 8 rows of x are 37 KB of the L1's 48).
  union {
    float s[16];        // q4: s_x of the block in its even lane, 0 in the odd one
    int32_t start[16];  // q8: -128 Σ of the lane's sixteen x bytes
  };
};

// The 32 bytes of eight blocks (at p, p + stride, ...) as four vectors of
// their qwords j = 0..3: an 8 × 4 transpose of qwords.
inline void qwords_of_8(const uint8_t* p, size_t stride, __m512i (&v)[4]) {
  __m512i z[4];
  for (int k = 0; k < 4; ++k) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * k * stride));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + (2 * k + 1) * stride));
    z[k] = join(lo, hi);
  }
  // t[0] = qwords 0, 1 of blocks 0-3; t[1] = qwords 2, 3 of blocks 0-3;
  // t[2], t[3] the same of blocks 4-7.
  const __m512i even = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13), odd = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i t0 = _mm512_permutex2var_epi64(z[0], even, z[1]), t1 = _mm512_permutex2var_epi64(z[0], odd, z[1]);
  const __m512i t2 = _mm512_permutex2var_epi64(z[2], even, z[3]), t3 = _mm512_permutex2var_epi64(z[2], odd, z[3]);
  const __m512i low = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), high = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
  v[0] = _mm512_permutex2var_epi64(t0, low, t2);
  v[1] = _mm512_permutex2var_epi64(t0, high, t2);
  v[2] = _mm512_permutex2var_epi64(t1, low, t3);
  v[3] = _mm512_permutex2var_epi64(t1, high, t3);
}

// (start is only read with q8 weights; q4 rows leave it unset.)
template <bool kQ4>
inline void pack_act_oct(const quant::BlockAct* x, int64_t octets, ActOct* out) {
  for (int64_t o = 0; o < octets; ++o) {
    const quant::BlockAct* xb = x + o * kOctet;
    ActOct& st = out[o];
    __m512i v[4];
    qwords_of_8(reinterpret_cast<const uint8_t*>(xb[0].q), sizeof(quant::BlockAct), v);
    __m512i sum = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      _mm512_store_si512(st.q[j], v[j]);
      if constexpr (!kQ4) sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8(1), v[j]);
    }
    if constexpr (!kQ4) _mm512_store_si512(st.start, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128)));
    for (int l = 0; l < 16; ++l) {
      st.d[l] = xb[l / 2].d;
      if constexpr (kQ4) st.s[l] = l % 2 ? 0.0f : xb[l / 2].s;
    }
  }
}

// Octet o of a weight row (blocks 8o .. 8o + 7) as the tiles read it: the
// four vectors of unsigned bytes (q8: w + 128; q4: vectors 0, 1 the low
// nibbles, 2, 3 the high ones, which pair with x bytes 16-31), and d (q4 also
// m) of each lane's block.
// Rows in quant::Layout::Octets are stored so: the vectors are loaded, and
// only the scales are spread over their lanes (and q4's nibbles split).
// Against rearranging Blocks here (`linear`, one thread, weights in L2): q8
// 8 rows 0.23 -> 0.17 ns per block and pair, q4 one row 0.60 -> 0.40.
// Lanes 2β and 2β + 1 both from lane 2β of v (kOdd: from lane 2β + 1): of
// per-block pairs [a_0, b_0, a_1, b_1, ...], a (or b) of each lane's block.
template <bool kOdd>
inline __m512 per_block(__m512 v) {
  constexpr int o = kOdd ? 1 : 0;
  return _mm512_permutexvar_ps(_mm512_setr_epi32(o, o, 2 + o, 2 + o, 4 + o, 4 + o, 6 + o, 6 + o, 8 + o, 8 + o,
                                                 10 + o, 10 + o, 12 + o, 12 + o, 14 + o, 14 + o),
                               v);
}

// q4: the octet's four vectors of nibbles from its qwords 0 and 1 (bytes
// 0-7 and 8-15 of each block): low nibbles, then high ones.
inline void split_nibbles(__m512i q0, __m512i q1, __m512i (&w)[4]) {
  const __m512i low = _mm512_set1_epi8(15);
  w[0] = _mm512_and_si512(q0, low);
  w[1] = _mm512_and_si512(q1, low);
  w[2] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), low);
  w[3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), low);
}

template <bool kQ4>
inline void arranged_octet(const uint8_t* first, __m512i (&w)[4], __m512& d, __m512& m) {
  if constexpr (kQ4) {
    // [d_0, m_0, d_1, m_1, ...], then the two vectors of bytes.
    const __m512 h = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first)));
    d = per_block<false>(h);
    m = per_block<true>(h);
    split_nibbles(_mm512_loadu_si512(first + 32), _mm512_loadu_si512(first + 96), w);
  } else {
    // [d_0, ..., d_7], then the four vectors of w + 128.
    const __m256 h = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(first)));
    d = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), _mm512_castps256_ps512(h));
    m = _mm512_setzero_ps();
    for (int j = 0; j < 4; ++j) w[j] = _mm512_loadu_si512(first + 16 + 64 * j);
  }
}

template <bool kQ4, bool kArranged>
inline void weight_octet(const uint8_t* row, int64_t o, __m512i (&w)[4], __m512& d, __m512& m) {
  constexpr int64_t kBlockBytes = kQ4 ? sizeof(quant::BlockQ4) : sizeof(quant::BlockQ8);
  const uint8_t* first = row + o * kOctet * kBlockBytes;
  if constexpr (kArranged) return arranged_octet<kQ4>(first, w, d, m);
  // Each block's first four bytes (q8: d and two weights, q4: d and m) as
  // halves [d_0, ·, d_1, ·, ...] / [·, m_0, ·, m_1, ...].
  const auto head = [&](int k) {
    int32_t h;
    __builtin_memcpy(&h, first + k * kBlockBytes, 4);
    return h;
  };
  // Inserted one by one into vector registers: assembled in general
  // registers and stored, the compiler's choice for q4, the 32-byte reload
  // waits for the stores to drain (one-row q4 took 1.9 ns per block).
  __m128i lo = _mm_cvtsi32_si128(head(0)), hi = _mm_cvtsi32_si128(head(4));
  lo = _mm_insert_epi32(lo, head(1), 1);
  hi = _mm_insert_epi32(hi, head(5), 1);
  lo = _mm_insert_epi32(lo, head(2), 2);
  hi = _mm_insert_epi32(hi, head(6), 2);
  lo = _mm_insert_epi32(lo, head(3), 3);
  hi = _mm_insert_epi32(hi, head(7), 3);
  const __m256i heads = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  const __m512 halves = _mm512_cvtph_ps(heads);
  d = per_block<false>(halves);
  if constexpr (kQ4) {
    m = per_block<true>(halves);
    // q bytes 0-15 of each block: qword 0 (bytes 0-7) and 1 (8-15) of the
    // eight blocks, gathered from two 4-block vectors.
    __m512i z[2];
    for (int k = 0; k < 2; ++k) {
      const uint8_t* q = first + 4 * k * kBlockBytes + 4;
      const auto two = [](const uint8_t* a, const uint8_t* b) {
        return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
      };
      z[k] = join(two(q, q + kBlockBytes), two(q + 2 * kBlockBytes, q + 3 * kBlockBytes));
    }
    split_nibbles(_mm512_permutex2var_epi64(z[0], _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), z[1]),
                  _mm512_permutex2var_epi64(z[0], _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), z[1]), w);
  } else {
    m = _mm512_setzero_ps();
    qwords_of_8(first + 2, kBlockBytes, w);
    for (int j = 0; j < 4; ++j) w[j] = _mm512_xor_si512(w[j], _mm512_set1_epi8(static_cast<char>(0x80)));
  }
}

// One octet of an MR × NR tile over packed activation rows `ldo` octets apart.
template <bool kQ4, bool kArranged, int MR, int NR>
inline void octet_step(const ActOct* x, int64_t ldo, const uint8_t* const* rows, int64_t o, __m512 (&acc)[MR][NR]) {
  __m512i w[NR][4];
  __m512 wd[NR], wm[NR];
#pragma GCC unroll 8
  for (int c = 0; c < NR; ++c) weight_octet<kQ4, kArranged>(rows[c], o, w[c], wd[c], wm[c]);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const ActOct& xa = x[r * ldo + o];
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      // Unsigned weights × signed x; q8 starts from -128 Σx for its w + 128.
      __m512i p = kQ4 ? _mm512_setzero_si512() : _mm512_load_si512(xa.start);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) p = _mm512_dpbusd_epi32(p, w[c][j], _mm512_load_si512(xa.q[j]));
      acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd[c], _mm512_load_ps(xa.d)), acc[r][c]);
      if constexpr (kQ4) acc[r][c] = _mm512_fmadd_ps(wm[c], _mm512_load_ps(xa.s), acc[r][c]);
    }
  }
}

// Bytes [at, at + kBytes) of a tile's weight rows `ahead` bytes on, into
// L2, and with `to_l1` the same bytes of the next tile's rows into L1 (see
// quant_tile). kBytes is a constant so that the loop unrolls into plain
// prefetches: with the count a run-time value (one lambda for both step
// sizes, inlined) the loop stayed a loop in the tile's inner loop, and 12
// layers of 125M q8 at 8 rows of x ran at 10.5-12.2 GB/s of weights instead
// of 17.5-22.5.
template <int NR, int64_t kBytes>
inline void prefetch_rows(const uint8_t* const* rows, int64_t at, size_t ahead, size_t tile_bytes, bool to_l1) {
#pragma GCC unroll 8
  for (int c = 0; c < NR; ++c)
#pragma GCC unroll 16
    for (int64_t off = 0; off < kBytes; off += 64) {
      prefetch_l2(rows[c] + ahead + at + off);
      if (to_l1) _mm_prefetch(reinterpret_cast<const char*>(rows[c] + tile_bytes + at + off), _MM_HINT_T0);
    }
}

// Sixteen vectors reduced together, vector n = v(n), each over its own 16
// lanes with `op`, in _mm512_reduce_add_ps's order (lane i with lane i + 8,
// then + 4, + 2, + 1): one tree of four levels, each combining the two
// halves of a pair of vectors' partial results, 45 instructions against 16
// × 8 for one reduction each. Returns the results with vector j + 4q's in
// lane 4j + q.
template <class Get, class Op>
inline __m512 reduce_16(Get v, Op op) {
  __m512 s1[8], s2[4], s3[2];
  // s1[k]: lanes 0-7 vector 2k's lane i op lane i + 8, lanes 8-15 vector 2k + 1's.
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k)
    s1[k] = op(_mm512_shuffle_f32x4(v(2 * k), v(2 * k + 1), _MM_SHUFFLE(1, 0, 1, 0)),
               _mm512_shuffle_f32x4(v(2 * k), v(2 * k + 1), _MM_SHUFFLE(3, 2, 3, 2)));
  // s2[k]: 128-bit lane j holds vector 4k + j's (+ 4).
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)
    s2[k] = op(_mm512_shuffle_f32x4(s1[2 * k], s1[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
               _mm512_shuffle_f32x4(s1[2 * k], s1[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  // s3[k]: 128-bit lane j holds vectors 8k + j and 8k + 4 + j, two lanes each (+ 2).
#pragma GCC unroll 2
  for (int k = 0; k < 2; ++k)
    s3[k] = op(_mm512_shuffle_ps(s2[2 * k], s2[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
               _mm512_shuffle_ps(s2[2 * k], s2[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // (+ 1): lane 4j + q holds vector j + 4q's.
  return op(_mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// The lane sums of a tile's accumulators, sums[r × NR + c] that of
// acc[r][c], each added in _mm512_reduce_add_ps's order, so that a row of y
// has the same bits whatever tile it falls in. Sixteen accumulators (the 8
// × 2 tiles) go through reduce_16: at 768 columns (3 octets a tile) sixteen
// separate reductions took a sixth of the tile's vector slots; 8 rows of x
// in L1, one thread: 34.9 -> 32.8 ns per tile and octet.
template <int MR, int NR>
inline void tile_sums(const __m512 (&acc)[MR][NR], float (&sums)[MR * NR]) {
  if constexpr (MR * NR != 16) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int c = 0; c < NR; ++c) sums[r * NR + c] = _mm512_reduce_add_ps(acc[r][c]);
  } else {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, reduce_16([&](int n) { return acc[n / NR][n % NR]; },
                                     [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); }));
#pragma GCC unroll 16
    for (int n = 0; n < 16; ++n) sums[n] = lanes[4 * (n % 4) + n / 4];
  }
}

template <bool kQ4, bool kArranged, int MR, int NR>
inline void quant_tile(const ActOct* xo, int64_t ldo, const ActStep* x, int64_t lda, const WeightRows& w, int64_t j,
                       float* y, int64_t ldy, bool last) {
  const int64_t nb = act_blocks(w.cols);
  const uint8_t* rows[NR];
  for (int c = 0; c < NR; ++c) rows[c] = w.data + static_cast<size_t>(j + c) * w.row_bytes;
  __m512 acc[MR][NR], mins[MR][NR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) acc[r][c] = mins[r][c] = _mm512_setzero_ps();
  constexpr int64_t kBlockBytes = kQ4 ? sizeof(quant::BlockQ4) : sizeof(quant::BlockQ8);
  // The rows about 4 KB on, at the blocks this tile is at (see int8_avx2.h):
  // whole tiles, so the same bytes of them. One tile ahead was too close once
  // the octets made tiles fast: with the 768-column rows of the vocabulary
  // projection 8 rows of x ran at 0.45 ns per block and pair one tile ahead,
  // 0.35 with 4 KB; one row 1.55 -> 1.36 (one thread). 3 and 6 KB were
  // within noise of 4, and so were 2, 8 and 12 KB once the prefetches went
  // to L2 (prefetch_l2), with the weights streamed from memory.
  // The last tile of several rows of x over these weight rows (batched
  // decode: the only one) also takes the next weight rows from L2 into L1,
  // and asks for the weights 8 KB ahead into L2: against 4 KB into L2
  // alone, 12 layers of 125M q8 from memory (2 threads, 3 alternating
  // runs), 8 rows of x 18.7-18.8 -> 21.0-21.4 GB/s of weights (the
  // 3072-column projection 2.1 -> 1.6 ms: its 8 rows of x fill L1, and its
  // weights came to the tile from L2); 125M q8 batch 8 666-708 -> 701-774
  // tokens/s. One row of x keeps 4 KB into L2 alone (with the L1 prefetch
  // 1.3B q4 decoded 36-38 tokens/s against 40-41), and so do the tiles
  // before the last (a prompt's 16 tiles of 8 rows each asking for the
  // next weight rows: 1.3B q8 prefill 175 -> 149-166).
  const bool to_l1 = MR > 1 && last;
  const size_t prefetch_bytes = to_l1 ? 8192 : 4096;
  const size_t tile_bytes = NR * w.row_bytes;
  const size_t ahead = (prefetch_bytes + tile_bytes - 1) / tile_bytes * tile_bytes;
  int64_t b = 0;
  for (; b + kOctet <= nb; b += kOctet) {
    prefetch_rows<NR, kOctet * kBlockBytes>(rows, b * kBlockBytes, ahead, tile_bytes, to_l1);
    octet_step<kQ4, kArranged, MR, NR>(xo, ldo, rows, b / kOctet, acc);
  }
  // The last blocks (fewer than eight) two at a time.
  for (; b + 2 <= nb; b += 2) {
    prefetch_rows<NR, 2 * kBlockBytes>(rows, b * kBlockBytes, ahead, tile_bytes, to_l1);
    tile_step<kQ4, MR, NR, true>(x, lda, rows, b, acc, mins);
  }
  if (b < nb) tile_step<kQ4, MR, NR, false>(x, lda, rows, b, acc, mins);
  float sums[MR * NR];
  tile_sums(acc, sums);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      float sum = sums[r * NR + c];
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
template <bool kQ4, bool kArranged, int NR>
inline void quant_rows(const ActOct* xo, int64_t ldo, const ActStep* x, int64_t lda, int64_t m, const WeightRows& w,
                       int64_t j, float* y, int64_t ldy) {
  int64_t i = 0;
  const auto tile = [&]<int MR>() {
    quant_tile<kQ4, kArranged, MR, NR>(xo + i * ldo, ldo, x + i * lda, lda, w, j, y + i * ldy, ldy, i + MR == m);
    i += MR;
  };
  while (i + 8 <= m) tile.template operator()<8>();
  while (i + 4 <= m) tile.template operator()<4>();
  switch (m - i) {
    case 3: tile.template operator()<3>(); break;
    case 2: tile.template operator()<2>(); break;
    case 1: tile.template operator()<1>(); break;
    default: break;
  }
}

// Rows of x quantized to int8 blocks (KernelSet::quantize_act), bit for bit
// as quant::quantize_row_act: sixteen blocks at a time, so that their
// maxima, scales and sums each take one tree (reduce_16) and one vector
// division instead of a horizontal reduction and two scalar divisions per
// block, whose latencies one block at a time (int8_avx2.h's
// quantize_act_block) could not hide: 8 rows of 768 columns took 1.4 us,
// serial work before every product of a batch-8 decode step. The maxima
// skip NaN (maxps returns its second operand when either is NaN, here the
// running maximum), as quantize_row_act's std::max does; the max, the
// integer sums and the divisions are exact, so the order changes nothing.
inline __m512 abs_ps(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF)));
}

// Blocks [0, n) of the 32-float blocks at x (n <= 16).
inline void quantize_16_blocks(const float* x, int64_t n, quant::BlockAct* out) {
  __m512 amax[16];
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) {
    amax[k] = _mm512_setzero_ps();
    if (k < n) {
      amax[k] = _mm512_max_ps(abs_ps(_mm512_loadu_ps(x + 32 * k)), amax[k]);
      amax[k] = _mm512_max_ps(abs_ps(_mm512_loadu_ps(x + 32 * k + 16)), amax[k]);
    }
  }
  // Block k's values in lane k (reduce_16 leaves vector j + 4q in lane 4j + q).
  const __m512i in_order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const auto max = [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); };
  const __m512 d = _mm512_div_ps(
      _mm512_permutexvar_ps(in_order, reduce_16([&](int k) { return amax[k]; }, max)), _mm512_set1_ps(127.0f));
  const __m512 inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), d);
  alignas(64) float inv_k[16];
  _mm512_store_ps(inv_k, inv);
  // cvtps2dq rounds to nearest even (the default MXCSR mode), as nearbyint;
  // a NaN becomes INT_MIN, clamped to -128 as quantize_row_act makes it.
  const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
  __m512i sums[16];
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) {
    sums[k] = _mm512_setzero_si512();
    if (k < n) {
      const __m512 s = _mm512_set1_ps(inv_k[k]);
      const __m512i q0 = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * k), s)), lo), hi);
      const __m512i q1 = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * k + 16), s)), lo), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out[k].q), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out[k].q + 16), _mm512_cvtepi32_epi8(q1));
      sums[k] = _mm512_add_epi32(q0, q1);
    }
  }
  const auto add = [](__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  };
  const __m512i sum = _mm512_castps_si512(
      _mm512_permutexvar_ps(in_order, reduce_16([&](int k) { return _mm512_castsi512_ps(sums[k]); }, add)));
  alignas(64) float d_k[16], s_k[16];
  _mm512_store_ps(d_k, d);
  _mm512_store_ps(s_k, _mm512_mul_ps(d, _mm512_cvtepi32_ps(sum)));
  for (int64_t k = 0; k < n; ++k) {
    out[k].d = d_k[k];
    out[k].s = s_k[k];
  }
}

inline void quantize_act(const float* x, int64_t cols, quant::BlockAct* out) {
  quantize_row_blocks(x, cols, out, [](const float* v, int64_t n, quant::BlockAct* o) {
    for (int64_t b = 0; b < n; b += 16) quantize_16_blocks(v + 32 * b, std::min<int64_t>(16, n - b), o + b);
  });
}

// Packed activations (KernelSet::pack_act): `rows` rows of `cols` columns
// as the tiles read them, rows × octets ActOct (row i's at i × octets), then
// rows × steps ActStep for each row's last (fewer than eight) blocks.
struct PackedActShape {
  int64_t octets, tail, steps;
  explicit PackedActShape(int64_t cols)
      : octets(act_blocks(cols) / kOctet), tail(act_blocks(cols) - octets * kOctet), steps((tail + 1) / 2) {}
  size_t bytes(int64_t rows) const {
    return static_cast<size_t>(rows) * (octets * sizeof(ActOct) + steps * sizeof(ActStep));
  }
  ActOct* oct(void* p) const { return static_cast<ActOct*>(p); }
  const ActOct* oct(const void* p) const { return static_cast<const ActOct*>(p); }
  ActStep* step(void* p, int64_t rows) const {
    return reinterpret_cast<ActStep*>(static_cast<char*>(p) + rows * octets * sizeof(ActOct));
  }
  const ActStep* step(const void* p, int64_t rows) const {
    return reinterpret_cast<const ActStep*>(static_cast<const char*>(p) + rows * octets * sizeof(ActOct));
  }
};

inline size_t packed_act_bytes(int64_t rows, int64_t cols) { return PackedActShape(cols).bytes(rows); }

// Rows [i0, i1) of x (quantized rows ldx blocks apart) into the packed
// rows of `out` (64-byte aligned, packed_act_bytes(rows, cols)); q8 and q4
// differ only in the pair steps' x (q8 made unsigned).
inline void pack_act(const quant::BlockAct* x, int64_t ldx, int64_t rows, int64_t i0, int64_t i1, int64_t cols,
                     bool q4, void* out) {
  const PackedActShape s(cols);
  for (int64_t i = i0; i < i1; ++i) {
    const quant::BlockAct* row = x + i * ldx;
    if (q4) {
      pack_act_oct<true>(row, s.octets, s.oct(out) + i * s.octets);
      pack_act_row<true>(row + s.octets * kOctet, s.tail, s.step(out, rows) + i * s.steps);
    } else {
      pack_act_oct<false>(row, s.octets, s.oct(out) + i * s.octets);
      pack_act_row<false>(row + s.octets * kOctet, s.tail, s.step(out, rows) + i * s.steps);
    }
  }
}

// As in int8_avx2.h's gemm_quant_fmt: one weight row at a time for one row
// of x (one sequential stream per thread), two for several; rows i0 .. i0 +
// m of the packed x.
template <bool kQ4, bool kArranged>
void gemm_packed_fmt(const void* packed, int64_t rows, int64_t i0, int64_t m, const WeightRows& w, float* y,
                     int64_t ldy) {
  const PackedActShape s(w.cols);
  const ActOct* xo = s.oct(packed) + i0 * s.octets;
  const ActStep* xp = s.step(packed, rows) + i0 * s.steps;
  int64_t j = 0;
  if (m > 1)
    for (; j + 2 <= w.rows; j += 2) quant_rows<kQ4, kArranged, 2>(xo, s.octets, xp, s.steps, m, w, j, y + j, ldy);
  for (; j < w.rows; ++j) quant_rows<kQ4, kArranged, 1>(xo, s.octets, xp, s.steps, m, w, j, y + j, ldy);
}

inline void gemm_quant_packed(const void* packed, int64_t rows, int64_t i0, int64_t m, const WeightRows& w, float* y,
                              int64_t ldy) {
  const bool arranged = w.layout == quant::Layout::Octets;
  if (w.format == WeightFormat::Q4)
    arranged ? gemm_packed_fmt<true, true>(packed, rows, i0, m, w, y, ldy)
             : gemm_packed_fmt<true, false>(packed, rows, i0, m, w, y, ldy);
  else
    arranged ? gemm_packed_fmt<false, true>(packed, rows, i0, m, w, y, ldy)
             : gemm_packed_fmt<false, false>(packed, rows, i0, m, w, y, ldy);
}

// KernelSet::gemm_quant (the contract every set keeps, and what the kernel
// tests call) on quantized rows as they are (ldx blocks apart): packed here,
// into this thread's buffer. kernels::linear packs once per call instead
// (pack_act, gemm_quant_packed), not once per chunk of weight rows.
inline void gemm_quant(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y,
                       int64_t ldy) {
  thread_local std::vector<CacheLine> buffer;
  const size_t lines = (packed_act_bytes(m, w.cols) + sizeof(CacheLine) - 1) / sizeof(CacheLine);
  if (buffer.size() < lines) buffer.resize(lines);
  pack_act(x, ldx, m, 0, m, w.cols, w.format == WeightFormat::Q4, buffer.data());
  gemm_quant_packed(buffer.data(), m, 0, m, w, y, ldy);
}

// The arithmetic limit of these products (gptneo bench --limits): twelve
// independent vpdpbusd chains, 64 multiply-adds each per step.
inline double int8_dot_loop(int64_t iters) {
  constexpr int kChains = 12;
  __m512i a[kChains];
  for (int c = 0; c < kChains; ++c) a[c] = _mm512_set1_epi32(c);
  const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-5);
  // (Unrolled, the chains stay in registers: rolled, the compiler kept them
  // on the stack and the loop ran at 5 instead of 6.8 per ns.)
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) a[c] = _mm512_dpbusd_epi32(a[c], u, v);
  __m512i total = _mm512_setzero_si512();
  for (int c = 0; c < kChains; ++c) total = _mm512_add_epi32(total, a[c]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, total);
  volatile int32_t sink = lanes[0];  // keeps the loop from being optimised away
  (void)sink;
  return static_cast<double>(iters) * kChains * 64 * 2;
}

}  // namespace vnni512
