// The AVX-512 kernels compiled a second time, for AVX2 CPUs, with every
// AVX-512 instruction emulated (avx512_intrinsics.h): the kernel set
// "avx512-emulated" (GPTNEO_ISA=avx512-emulated). Slower than the AVX2 set
// and never chosen by itself; it exists so that machines without AVX-512
// test the AVX-512 code. CMake compiles this file only where SIMDe's
// headers are installed (GPTNEO_AVX512_EMULATION).
#define GPTNEO_AVX512_EMULATED 1
#include "kernels/kernels_avx512.cpp"
