// The packed, cache-blocked matrix product (the BLIS scheme, as llm.c's
// CPU matmul and every fast BLAS do):
//
//   for each block of KC steps of the inner dimension:
//     pack op(B)[KC × N] into panels of NR columns      (shared by all threads)
//     each thread, for its rows of C, for blocks of MC rows:
//       pack op(A)[MC × KC] into panels of MR rows      (its own, stays in L2)
//       for each B panel (stays in L1), for each A panel:
//         C[MR × NR] += A panel · B panel               (the micro-kernel, in registers)
//
// Packing is also where transposes are absorbed: the micro-kernel always
// reads contiguous panels, whatever the layout of A and B.
#include "train/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernel_set.h"

namespace gptneo::training {

namespace {

using detail::kMR;
using detail::kNR;

// KC × NR floats of a B panel (16 KB) fit L1; MC × KC of A (120 KB) fit L2.
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 120;
// Columns of B packed at a time (KC × NC = 2 MB, in the shared cache).
constexpr int64_t kNC = 2048;

std::atomic<bool> g_bf16_operands{false};

template <class T>
T round_operand(T v) {
  if constexpr (std::is_same_v<T, float>) {
    if (g_bf16_operands.load(std::memory_order_relaxed)) return bf16_to_f32(f32_to_bf16(v));
  }
  return v;
}

template <class T>
bool rounding_on() {
  if constexpr (std::is_same_v<T, float>) return g_bf16_operands.load(std::memory_order_relaxed);
  return false;
}

// ap[p * MR * kc + k * MR + i] = op(A)[i0 + p * MR + i, k0 + k], zero past row mc.
template <class T>
void pack_a(const GemmArgs& g, const T* A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* ap) {
  for (int64_t p = 0; p < mc; p += kMR) {
    const int64_t rows = std::min(kMR, mc - p);
    T* dst = ap + p * kc;
    if (g.ta == Trans::No) {
      for (int64_t i = 0; i < rows; ++i) {
        const T* src = A + (i0 + p + i) * g.lda + k0;
        for (int64_t k = 0; k < kc; ++k) dst[k * kMR + i] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + (k0 + k) * g.lda + i0 + p;
        for (int64_t i = 0; i < rows; ++i) dst[k * kMR + i] = src[i];
      }
    }
    if (rows < kMR)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t i = rows; i < kMR; ++i) dst[k * kMR + i] = T(0);
    if (rounding_on<T>())
      for (int64_t k = 0; k < kc * kMR; ++k) dst[k] = round_operand(dst[k]);
  }
}

// Panel q of bp: bp[q * NR * kc + k * NR + j] = op(B)[k0 + k, j0 + q * NR + j], zero past column nc.
template <class T>
void pack_b_panel(const GemmArgs& g, const T* B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t q, T* bp) {
  const int64_t c0 = q * kNR, cols = std::min(kNR, nc - c0);
  T* dst = bp + q * kNR * kc;
  if (g.tb == Trans::No) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + (k0 + k) * g.ldb + j0 + c0;
      std::memcpy(dst + k * kNR, src, static_cast<size_t>(cols) * sizeof(T));
      for (int64_t j = cols; j < kNR; ++j) dst[k * kNR + j] = T(0);
    }
  } else {
    for (int64_t j = 0; j < cols; ++j) {
      const T* src = B + (j0 + c0 + j) * g.ldb + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + j] = src[k];
    }
    if (cols < kNR)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = cols; j < kNR; ++j) dst[k * kNR + j] = T(0);
  }
  if (rounding_on<T>())
    for (int64_t k = 0; k < kc * kNR; ++k) dst[k] = round_operand(dst[k]);
}

// The portable micro-kernel (the compiler vectorises the j loop).
template <class T>
void micro_kernel_generic(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr, int64_t nr,
                          bool accumulate) {
  T acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * kNR;
    const T* ak = a + k * kMR;
    for (int64_t i = 0; i < kMR; ++i) {
      const T ai = ak[i];
      for (int64_t j = 0; j < kNR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int64_t i = 0; i < mr; ++i) {
    T* ci = c + i * ldc;
    if (accumulate)
      for (int64_t j = 0; j < nr; ++j) ci[j] += acc[i][j];
    else
      for (int64_t j = 0; j < nr; ++j) ci[j] = acc[i][j];
  }
}

template <class T>
using MicroKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, int64_t, int64_t, bool);

template <class T>
MicroKernel<T> pick_kernel() {
  if constexpr (std::is_same_v<T, float>) {
    if (kernels::active().isa != kernels::Isa::Scalar) return detail::micro_kernel_6x16_avx2;
  }
  return micro_kernel_generic<T>;
}

// One thread's share: rows [r0, r1) of C, B panels [q0, q1) of the packed block.
template <class T>
void compute_block(const GemmArgs& g, const T* A, const T* bp, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                   int64_t r0, int64_t r1, int64_t q0, int64_t q1, T* C, bool accumulate, MicroKernel<T> kernel) {
  thread_local std::vector<T> ap_buf;
  ap_buf.resize(static_cast<size_t>(kMC * kKC));
  T* ap = ap_buf.data();
  for (int64_t i0 = r0; i0 < r1; i0 += kMC) {
    const int64_t mc = std::min(kMC, r1 - i0);
    pack_a(g, A, i0, mc, k0, kc, ap);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t c0 = q * kNR, nr = std::min(kNR, nc - c0);
      const T* bq = bp + q * kNR * kc;
      for (int64_t p = 0; p < mc; p += kMR) {
        const int64_t mr = std::min(kMR, mc - p);
        kernel(kc, ap + p * kc, bq, C + (i0 + p) * g.ldc + j0 + c0, g.ldc, mr, nr, accumulate);
      }
    }
  }
}

template <class T>
void zero_or_keep(const GemmArgs& g, T* C) {
  if (g.accumulate) return;
  for (int64_t i = 0; i < g.M; ++i) std::fill(C + i * g.ldc, C + i * g.ldc + g.N, T(0));
}

template <class T>
void gemm_impl(const GemmArgs& g, const T* A, const T* B, T* C, ThreadPool* pool) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) return zero_or_keep(g, C);
  const MicroKernel<T> kernel = pick_kernel<T>();
  const int threads = pool ? pool->size() : 1;
  thread_local std::vector<T> bp_buf;
  for (int64_t j0 = 0; j0 < g.N; j0 += kNC) {
    const int64_t nc = std::min(kNC, g.N - j0);
    const int64_t panels = (nc + kNR - 1) / kNR;
    for (int64_t k0 = 0; k0 < g.K; k0 += kKC) {
      const int64_t kc = std::min(kKC, g.K - k0);
      const bool acc = g.accumulate || k0 > 0;
      bp_buf.resize(static_cast<size_t>(panels * kNR * kc));
      T* bp = bp_buf.data();
      // Split C into a grid of row ranges × panel ranges, one cell per thread:
      // rows first (each thread then packs only its own A), columns when
      // there are too few rows to go round.
      const int64_t row_units = (g.M + kMR - 1) / kMR;
      const int64_t gm = std::min<int64_t>(threads, row_units);
      const int64_t gn = std::min<int64_t>((threads + gm - 1) / gm, panels);
      auto cell = [&](int64_t t) {
        const int64_t ti = t / gn, tj = t % gn;
        const int64_t r0 = std::min(g.M, row_units * ti / gm * kMR), r1 = std::min(g.M, row_units * (ti + 1) / gm * kMR);
        const int64_t q0 = panels * tj / gn, q1 = panels * (tj + 1) / gn;
        if (r0 < r1 && q0 < q1) compute_block(g, A, bp, k0, kc, j0, nc, r0, r1, q0, q1, C, acc, kernel);
      };
      if (threads == 1 || gm * gn == 1) {
        for (int64_t q = 0; q < panels; ++q) pack_b_panel(g, B, k0, kc, j0, nc, q, bp);
        cell(0);
      } else {
        pool->parallel_for(panels, 1, [&](int64_t q0, int64_t q1) {
          for (int64_t q = q0; q < q1; ++q) pack_b_panel(g, B, k0, kc, j0, nc, q, bp);
        });
        pool->parallel_for(gm * gn, 1, [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) cell(t);
        });
      }
    }
  }
}

}  // namespace

void gemm(const GemmArgs& g, const float* A, const float* B, float* C, ThreadPool* pool) {
  gemm_impl(g, A, B, C, pool);
}
void gemm(const GemmArgs& g, const double* A, const double* B, double* C, ThreadPool* pool) {
  gemm_impl(g, A, B, C, pool);
}

void set_gemm_bf16_operands(bool on) { g_bf16_operands.store(on); }
bool gemm_bf16_operands() { return g_bf16_operands.load(); }

}  // namespace gptneo::training
