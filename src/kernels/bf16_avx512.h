// Products with bf16 weights for CPUs with AVX512-BF16: vdpbf16ps multiplies
// 32 pairs of bf16 values and adds each pair's two products into one of 16
// float32 sums, twice the work of a float32 FMA per instruction. Used for
// many rows of x (prompts): the activations are rounded to bf16 once per
// call (as PyTorch's bf16 models and llama.cpp do); the weights are bf16
// already; every sum stays float32. One row of x (decoding) keeps the float32
// activations of gemm_direct: it is bound by memory, not arithmetic.
//
// The products themselves are rows_avx512.h's, with x rounded to bf16 and
// packed two neighbouring columns k = 2p, 2p + 1 per 32-bit unit (low half
// first, an odd last column paired with zero), and the weights read in the
// same units from their own rows. This file holds what is bf16's own.
//
// Included inside kernels_avx512.cpp's namespace, after simd_kernels.h.

inline __m512bh as_bf16_pairs(__m512i v) {
  __m512bh r;
  __builtin_memcpy(&r, &v, sizeof r);
  return r;
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
