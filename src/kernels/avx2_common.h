// Small AVX2 helpers shared by kernels_avx2.cpp and kernels_avx512.cpp
// (every AVX-512 CPU runs AVX2), included inside their own namespaces.
//
// Requires: <immintrin.h>.

// Asks for the cache line at p, soon to be read once (weights, or a KV
// cache's keys and values, streaming past), into L2, not L1 (prefetcht1,
// which Intel and AMD both take to L2). A prefetch into L1 holds one of its
// few miss buffers until the line is in; with the weights 4 KB ahead those
// filled up and held back the loads the products were waiting for. Zen 5,
// a decode step's products streamed from memory (12 layers of 125M q8, 2
// threads, GB/s of weights, three alternating runs): 1 row of x 27 -> 33-37,
// 8 rows 14-16 -> 19-20; 1.3B q4 1 row 22-26 -> 33-40, bf16 31-32 -> 35-37,
// f32 34-36 -> 36-38. prefetcht2 did the same as t1; prefetchnta and no
// prefetch were worse. Attention's keys and values (125M q8, batch 8,
// 256-token prompts): 5.8 -> 4.6 ms a step (3 alternating runs).
inline void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }

inline float hmax_256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum_256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// dst[c * ldd + r] = src[r * lds + c] for an 8 × 8 block of floats.
inline void transpose_8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
