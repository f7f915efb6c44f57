// The kernels for AVX-512 F/BW/VL/DQ (16 float lanes). Compiled with those
// flags (CMake gives them to files named *_avx512.cpp) and only called after
// isa.cpp has checked the CPU.
//
// The algorithms are the ones of simd_kernels.h that the AVX2 build runs
// too; only the primitives below are new. Where the CPU has no AVX-512, the
// tests run this file compiled again with the instructions emulated
// (kernels_avx512_emulated.cpp, see avx512_intrinsics.h).

// GCC 12's _mm512_reduce_add_ps and friends start from _mm512_undefined_*()
// vectors and warn (-W(maybe-)uninitialized) wherever they are inlined, some
// 450 times here: a false positive of its own headers, silenced for the
// intrinsics headers only (the warnings are placed at their lines), so that
// this file's own code is still checked.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/avx512_intrinsics.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/kernel_set.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {
namespace avx512 {
namespace {

struct S {
  using V = __m512;
  static constexpr int L = 16;
  // 12 × 2 accumulators + 2 panel vectors + 1 broadcast of the 32 registers.
  static constexpr int kPanelRows = 12;
#ifdef GPTNEO_AVX512_EMULATED
  static constexpr const char* kName = "avx512-emulated";
  static constexpr Isa kIsa = Isa::Avx512Emulated;
#else
  static constexpr const char* kName = "avx512";
  static constexpr Isa kIsa = Isa::Avx512;
#endif

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float f) { return _mm512_set1_ps(f); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static V less_select(V x, V t, V a, V b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, t, _CMP_LT_OQ), b, a);
  }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static float hmax(V v) { return _mm512_reduce_max_ps(v); }
  static V load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store_f16(uint16_t* p, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static V load_bf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static V q8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static __m512i bytes(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V q4_lo(const uint8_t* p) { return _mm512_cvtepi32_ps(_mm512_and_si512(bytes(p), _mm512_set1_epi32(15))); }
  static V q4_hi(const uint8_t* p) { return _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes(p), 4)); }
  static float f16_scalar(uint16_t h) { return _cvtsh_ss(h); }
};

#include "kernels/avx2_common.h"
#include "kernels/int8_avx2.h"
#include "kernels/int8_avx512.h"
#include "kernels/simd_kernels.h"
#include "kernels/bf16_avx512.h"
#include "kernels/rows_avx512.h"

// AVX512-VNNI: the int8 block products eight blocks at a time (int8_avx512.h).
void gemm_quant_vnni(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  vnni512::gemm_quant(x, ldx, m, w, y, ldy);
}

// kTable plus the prompt products from weight rows (rows_avx512.h).
KernelSet base_table() {
  KernelSet k = kTable;
  k.gemm_f32_rows = gemm_f32_rows;
  return k;
}

// base_table plus the AVX512-VNNI and AVX512-BF16 products.
KernelSet with_dot_products() {
  KernelSet k = base_table();
  k.quantize_act = vnni512::quantize_act;
  k.gemm_quant = gemm_quant_vnni;
  // 1.3B shapes, 128 rows, 2 threads: 0.13 ns per block and pair against
  // 0.20-0.23 for the float32 panels (q8 and q4).
  k.int8_prompts = true;
  k.int8_dot_loop = vnni512::int8_dot_loop;
  k.packed_act_bytes = vnni512::packed_act_bytes;
  k.pack_act = vnni512::pack_act;
  k.gemm_quant_packed = vnni512::gemm_quant_packed;
  k.weight_layout = quant::Layout::Octets;
  k.gemm_bf16_rows = gemm_bf16_rows;
  k.bf16_dot_loop = bf16_dot_loop;
  return k;
}

}  // namespace
}  // namespace avx512

#ifdef GPTNEO_AVX512_EMULATED
// Emulated, every instruction is available: the full variant is the one to test.
const KernelSet& avx512_emulated_kernels() {
  static const KernelSet k = avx512::with_dot_products();
  return k;
}
#else
const KernelSet& avx512_kernels(bool with_dot_products) {
  static const KernelSet k = avx512::with_dot_products(), base = avx512::base_table();
  return with_dot_products ? k : base;
}
#endif

}  // namespace gptneo::kernels
