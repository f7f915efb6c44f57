// The AVX-512 intrinsics kernels_avx512.cpp is written in: the compiler's
// own (<immintrin.h>), or, when GPTNEO_AVX512_EMULATED is defined, the same
// names implemented with AVX2 instructions by SIMDe (simd-everywhere,
// Debian's libsimde-dev), plus the few conversions and reductions SIMDe 0.7
// lacks, written below on two 256-bit halves.
//
// Why emulate: the AVX-512 kernels would otherwise only ever run on machines
// with AVX-512, and a machine without it could not test them. CMake compiles
// kernels_avx512.cpp a second time in this mode (the "avx512-emulated"
// kernel set, GPTNEO_ISA=avx512-emulated), so the kernel and golden tests run
// the AVX-512 code paths (16-lane vectors, masks, VNNI and BF16 dot products)
// on any AVX2 machine. It checks the code, not the speed.
//
// Include at global scope, before any namespace.
#pragma once

#include <immintrin.h>

#ifdef GPTNEO_AVX512_EMULATED

// SIMDe's per-extension aliases map each _mm512_* call to its simde_mm512_*
// function. Its type aliases are left off (the compiler's headers already
// declare __m512 and friends); the macros below rename the types instead.
#define SIMDE_X86_AVX512F_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512BW_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512VL_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512DQ_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512VNNI_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512BF16_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#define __m512 simde__m512
#define __m512i simde__m512i
#define __m512bh simde__m512bh
#define __m256bh simde__m256bh
#define __mmask16 simde__mmask16

namespace gptneo_avx512_emulation {

inline __m256 lo(simde__m512 v) { return simde__m512_to_private(v).m256[0]; }
inline __m256 hi(simde__m512 v) { return simde__m512_to_private(v).m256[1]; }
inline __m256i lo(simde__m512i v) { return simde__m512i_to_private(v).m256i[0]; }
inline __m256i hi(simde__m512i v) { return simde__m512i_to_private(v).m256i[1]; }
inline simde__m512 join(__m256 l, __m256 h) {
  simde__m512_private p;
  p.m256[0] = l;
  p.m256[1] = h;
  return simde__m512_from_private(p);
}
inline simde__m512i join(__m256i l, __m256i h) {
  simde__m512i_private p;
  p.m256i[0] = l;
  p.m256i[1] = h;
  return simde__m512i_from_private(p);
}

inline simde__m512i cvtps_epi32(simde__m512 v) { return join(_mm256_cvtps_epi32(lo(v)), _mm256_cvtps_epi32(hi(v))); }
inline simde__m512 cvtepi32_ps(simde__m512i v) { return join(_mm256_cvtepi32_ps(lo(v)), _mm256_cvtepi32_ps(hi(v))); }
inline simde__m512 cvtph_ps(__m256i h) {
  return join(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
}
// Rounding to nearest (even): the only mode the kernels ask for.
inline __m256i cvtps_ph_nearest(simde__m512 v) {
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  return _mm256_set_m128i(_mm256_cvtps_ph(hi(v), kNearest), _mm256_cvtps_ph(lo(v), kNearest));
}
inline simde__m512i cvtepu16_epi32(__m256i h) {
  return join(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)));
}
inline simde__m512i cvtepi8_epi32(__m128i b) {
  return join(_mm256_cvtepi8_epi32(b), _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b)));
}
inline simde__m512i zextsi256_si512(__m256i v) { return join(v, _mm256_setzero_si256()); }
inline simde__m512i cvtepu8_epi32(__m128i b) {
  return join(_mm256_cvtepu8_epi32(b), _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b)));
}
// vpmovdb (each lane's low byte) for lanes within [-128, 127], the only
// ones its callers give it: saturating packs, then the bytes back in order.
inline __m128i cvtepi32_epi8(simde__m512i v) {
  const __m256i w = _mm256_packs_epi32(lo(v), hi(v));  // 16-bit: lanes 0-3, 8-11, 4-7, 12-15
  const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return _mm_shuffle_epi8(b, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15));
}
// In halves (lanes i and i + 8, then i and i + 4, ...), the order of GCC's
// own _mm512_reduce_*.
template <class T, class Op>
inline T reduce_in_halves(T (&a)[16], Op op) {
  for (int width = 8; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) a[i] = op(a[i], a[i + width]);
  return a[0];
}
inline float reduce_add_ps(simde__m512 v) {
  alignas(64) float a[16];
  simde_mm512_store_ps(a, v);
  return reduce_in_halves(a, [](float x, float y) { return x + y; });
}
inline float reduce_max_ps(simde__m512 v) {
  alignas(64) float a[16];
  simde_mm512_store_ps(a, v);
  return reduce_in_halves(a, [](float x, float y) { return x > y ? x : y; });
}

}  // namespace gptneo_avx512_emulation

#define _mm512_cvtps_epi32 gptneo_avx512_emulation::cvtps_epi32
#define _mm512_cvtepi32_ps gptneo_avx512_emulation::cvtepi32_ps
#define _mm512_cvtph_ps gptneo_avx512_emulation::cvtph_ps
#define _mm512_cvtps_ph(v, rounding) gptneo_avx512_emulation::cvtps_ph_nearest(v)
#define _mm512_cvtepu16_epi32 gptneo_avx512_emulation::cvtepu16_epi32
#define _mm512_cvtepi8_epi32 gptneo_avx512_emulation::cvtepi8_epi32
#define _mm512_cvtepu8_epi32 gptneo_avx512_emulation::cvtepu8_epi32
#define _mm512_zextsi256_si512 gptneo_avx512_emulation::zextsi256_si512
#define _mm512_cvtepi32_epi8 gptneo_avx512_emulation::cvtepi32_epi8
#define _mm512_reduce_add_ps gptneo_avx512_emulation::reduce_add_ps
#define _mm512_reduce_max_ps gptneo_avx512_emulation::reduce_max_ps
// (SIMDe 0.7 has this one, but not under the native name.)
#define _mm512_shuffle_f32x4(a, b, imm8) simde_mm512_shuffle_f32x4(a, b, imm8)

#endif  // GPTNEO_AVX512_EMULATED
