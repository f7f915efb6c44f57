// The kernels for AVX2 + FMA + F16C (8 float lanes). Compiled with those
// flags (CMake gives them to files named *_avx2.cpp) and only called after
// isa.cpp has checked the CPU.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/kernel_set.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {
namespace avx2 {
namespace {

#include "kernels/avx2_common.h"

struct S {
  using V = __m256;
  static constexpr int L = 8;
  // Rows of x per panel tile: 6 × 2 accumulators + 2 panel vectors + 1
  // broadcast fill 15 of the 16 registers.
  static constexpr int kPanelRows = 6;
  static constexpr const char* kName = "avx2";
  static constexpr Isa kIsa = Isa::Avx2;

  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float f) { return _mm256_set1_ps(f); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static V less_select(V x, V t, V a, V b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, t, _CMP_LT_OQ)); }
  static float hsum(V v) { return hsum_256(v); }
  static float hmax(V v) { return hmax_256(v); }
  static V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static void store_f16(uint16_t* p, V v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static V load_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static V q8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static __m256i bytes(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static V q4_lo(const uint8_t* p) { return _mm256_cvtepi32_ps(_mm256_and_si256(bytes(p), _mm256_set1_epi32(15))); }
  static V q4_hi(const uint8_t* p) { return _mm256_cvtepi32_ps(_mm256_srli_epi32(bytes(p), 4)); }
  static float f16_scalar(uint16_t h) { return _cvtsh_ss(h); }
};

#include "kernels/int8_avx2.h"
#include "kernels/simd_kernels.h"

}  // namespace
}  // namespace avx2

const KernelSet& avx2_kernels() { return avx2::kTable; }

}  // namespace gptneo::kernels
