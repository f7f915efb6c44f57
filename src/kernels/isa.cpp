// Choosing the kernel set at run time from CPUID, so that one binary runs on
// any x86-64 CPU and uses the widest vectors it has.
#include <atomic>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GPTNEO_X86 1
#endif

namespace gptneo::kernels {

namespace {

struct CpuFeatures {
  bool avx2 = false;       // AVX2 + FMA + F16C, and the OS saves the YMM registers
  bool avx512 = false;     // AVX-512 F/BW/VL/DQ, and the OS saves the ZMM registers
  bool bf16_vnni = false;  // AVX512-BF16 and AVX512-VNNI
};

CpuFeatures detect() {
  CpuFeatures f;
#ifdef GPTNEO_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & bit_OSXSAVE, fma = c & bit_FMA, f16c = c & bit_F16C, avx = c & bit_AVX;
  if (!osxsave || !avx) return f;
  unsigned xlo, xhi;
  __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool ymm_saved = (xlo & 0x6) == 0x6;           // SSE and AVX state
  const bool zmm_saved = (xlo & 0xe6) == 0xe6;         // plus opmask and ZMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm_saved && fma && f16c && (b & bit_AVX2);
  const bool avx512 = (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) && (b & bit_AVX512DQ);
  f.avx512 = f.avx2 && zmm_saved && avx512;
  const bool vnni = c & bit_AVX512VNNI;
  unsigned a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  f.bf16_vnni = f.avx512 && vnni && (a1 & bit_AVX512BF16);
#endif
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa best_isa() {
  if (features().avx512) return Isa::Avx512;
  if (features().avx2) return Isa::Avx2;
  return Isa::Scalar;
}

const KernelSet& table(Isa isa) {
  switch (isa) {
#ifdef GPTNEO_HAVE_AVX512_EMULATION
    case Isa::Avx512Emulated: return avx512_emulated_kernels();
#else
    case Isa::Avx512Emulated: break;  // cpu_supports says no
#endif
    case Isa::Avx512: return avx512_kernels(features().bf16_vnni);
    case Isa::Avx2: return avx2_kernels();
    case Isa::Scalar: break;
  }
  return scalar_kernels();
}

std::string supported_list() {
  std::string list = "scalar";
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Avx512Emulated})
    if (cpu_supports(isa)) list += std::string(", ") + isa_label(isa);
  return list;
}

std::string unsupported_reason(Isa isa) {
  if (isa == Isa::Avx512Emulated && features().avx2)
    return "this build has no emulated AVX-512 kernels (SIMDe's headers, libsimde-dev, were not found by CMake)";
  return fmt::format("this CPU does not support the {} kernels (it supports: {})", isa_label(isa), supported_list());
}

Isa isa_from_env() {
  const char* env = std::getenv("GPTNEO_ISA");
  if (!env || !*env) return best_isa();
  const std::string name = env;
  Isa isa;
  if (name == "scalar") isa = Isa::Scalar;
  else if (name == "avx2") isa = Isa::Avx2;
  else if (name == "avx512") isa = Isa::Avx512;
  else if (name == "avx512-emulated") isa = Isa::Avx512Emulated;
  else
    throw Error(fmt::format(
        "GPTNEO_ISA=\"{}\" is not a kernel set (expected scalar, avx2, avx512 or avx512-emulated)", name));
  if (!cpu_supports(isa)) throw Error(fmt::format("GPTNEO_ISA={}: {}", name, unsupported_reason(isa)));
  return isa;
}

std::atomic<const KernelSet*> g_active{nullptr};

}  // namespace

bool cpu_supports(Isa isa) {
  switch (isa) {
#ifdef GPTNEO_HAVE_AVX512_EMULATION
    case Isa::Avx512Emulated: return features().avx2;
#else
    case Isa::Avx512Emulated: return false;
#endif
    case Isa::Avx512: return features().avx512;
    case Isa::Avx2: return features().avx2;
    case Isa::Scalar: return true;
  }
  return false;
}

bool cpu_has_avx512_bf16_vnni() { return features().bf16_vnni; }

const char* isa_label(Isa isa) {
  switch (isa) {
    case Isa::Avx512Emulated: return "avx512-emulated";
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Scalar: break;
  }
  return "scalar";
}

const KernelSet& active() {
  const KernelSet* k = g_active.load(std::memory_order_acquire);
  if (k) return *k;
  const KernelSet* chosen = &table(isa_from_env());
  g_active.store(chosen, std::memory_order_release);
  return *chosen;
}

void set_active(Isa isa) {
  if (!cpu_supports(isa)) throw Error(unsupported_reason(isa));
  g_active.store(&table(isa), std::memory_order_release);
}

std::string isa_name() { return active().name; }

bool bf16_dot_products() { return active().gemm_bf16_rows != nullptr; }

}  // namespace gptneo::kernels
