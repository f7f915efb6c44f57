// The portable kernel set: plain C++ that any x86-64 (or other) CPU runs,
// written with independent partial sums so that compilers vectorise it for
// the baseline ISA. It is also the fallback GPTNEO_ISA=scalar forces.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "kernels/kernel_set.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {

namespace {

constexpr int kLanes = 8;
constexpr int64_t kPanelWidth = 16;
constexpr int64_t kPanelRows = 4;
constexpr int64_t kChunk = 256;  // weights widened to float at a time

// Columns [k0, k0 + n) of a weight row as float32 (for quantized rows k0 is
// a multiple of the block size).
void widen(WeightFormat f, const uint8_t* row, int64_t k0, int64_t n, float* out) {
  switch (f) {
    case WeightFormat::F32:
      std::memcpy(out, reinterpret_cast<const float*>(row) + k0, static_cast<size_t>(n) * 4);
      return;
    case WeightFormat::F16:
    case WeightFormat::BF16: {
      const DType t = f == WeightFormat::F16 ? DType::F16 : DType::BF16;
      convert_to_f32(t, row + 2 * k0, static_cast<size_t>(n), out);
      return;
    }
    case WeightFormat::Q8:
    case WeightFormat::Q4: {
      // k0 is a multiple of the block size; widen whole blocks.
      const int64_t b0 = k0 / quant::kBlock;
      float tmp[kChunk + quant::kBlock];
      const int64_t cols = ((n + quant::kBlock - 1) / quant::kBlock) * quant::kBlock;
      if (f == WeightFormat::Q8)
        quant::dequantize_row_q8(reinterpret_cast<const quant::BlockQ8*>(row) + b0, cols, tmp);
      else
        quant::dequantize_row_q4(reinterpret_cast<const quant::BlockQ4*>(row) + b0, cols, tmp);
      std::memcpy(out, tmp, static_cast<size_t>(n) * 4);
      return;
    }
  }
}

inline float dot_lanes(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[k + l] * b[k + l];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

void gemm_direct(const float* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  float buf[kChunk];
  for (int64_t j = 0; j < w.rows; ++j) {
    const uint8_t* row = w.data + static_cast<size_t>(j) * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) y[i * ldy + j] = 0.0f;
    for (int64_t k0 = 0; k0 < w.cols; k0 += kChunk) {
      const int64_t n = std::min(kChunk, w.cols - k0);
      const float* wk = buf;
      if (w.format == WeightFormat::F32)
        wk = reinterpret_cast<const float*>(row) + k0;
      else
        widen(w.format, row, k0, n, buf);
      for (int64_t i = 0; i < m; ++i) y[i * ldy + j] += dot_lanes(x + i * ldx + k0, wk, n);
    }
  }
}

// The integer dot products of the q8 / q4 kernels, one block at a time:
// eight 32-bit partial sums as the SIMD sets keep them would change nothing
// here (integer sums are exact), so a block is one integer sum.
void gemm_quant(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy) {
  const int64_t nb = quant::blocks_per_row(w.cols);
  const bool q4 = w.format == WeightFormat::Q4;
  const size_t bb = quant::block_bytes(w.format);
  for (int64_t j = 0; j < w.rows; ++j) {
    const uint8_t* row = w.data + static_cast<size_t>(j) * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) {
      float acc = 0.0f, msum = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const quant::BlockAct& xb = x[i * ldx + b];
        int32_t isum = 0;
        uint16_t dh, mh = 0;
        std::memcpy(&dh, row + b * bb, 2);
        if (q4) {
          quant::BlockQ4 blk;
          std::memcpy(&blk, row + b * bb, sizeof blk);
          mh = blk.m;
          for (int k = 0; k < 16; ++k) isum += (blk.q[k] & 15) * xb.q[k] + (blk.q[k] >> 4) * xb.q[k + 16];
        } else {
          const auto* q = reinterpret_cast<const int8_t*>(row + b * bb + 2);
          for (int k = 0; k < 32; ++k) isum += q[k] * xb.q[k];
        }
        acc += f16_to_f32(dh) * xb.d * static_cast<float>(isum);
        if (q4) msum += f16_to_f32(mh) * xb.s;
      }
      y[i * ldy + j] = acc + msum;
    }
  }
}

void pack_panel(const WeightRows& w, int64_t k0, int64_t kc, float* panel) {
  float buf[kChunk];
  for (int64_t j = 0; j < kPanelWidth; ++j) {
    for (int64_t k = 0; k < kc; k += kChunk) {
      const int64_t n = std::min(kChunk, kc - k);
      if (j < w.rows)
        widen(w.format, w.data + static_cast<size_t>(j) * w.row_bytes, k0 + k, n, buf);
      else
        std::fill(buf, buf + n, 0.0f);
      for (int64_t t = 0; t < n; ++t) panel[(k + t) * kPanelWidth + j] = buf[t];
    }
  }
}

void gemm_panel(const float* xp, int64_t m, const float* panel, int64_t kc, int64_t n, float* y, int64_t ldy,
                bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xt = xp + (i / kPanelRows) * kc * kPanelRows + i % kPanelRows;
    float acc[kPanelWidth] = {};
    for (int64_t k = 0; k < kc; ++k) {
      const float xv = xt[k * kPanelRows];
      for (int64_t j = 0; j < kPanelWidth; ++j) acc[j] += xv * panel[k * kPanelWidth + j];
    }
    for (int64_t j = 0; j < n; ++j) y[i * ldy + j] = accumulate ? y[i * ldy + j] + acc[j] : acc[j];
  }
}

float dot(const float* a, const float* b, int64_t n) { return dot_lanes(a, b, n); }

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// (std::clamp keeps NaN: both its comparisons are false.)
void to_f16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(std::clamp(x[i], -65504.0f, 65504.0f));
}

void layer_norm_row(const float* x, int64_t d, const float* gamma, const float* beta, float eps, float* y) {
  // Two passes (mean, then centred variance) as PyTorch does: one-pass
  // E[x²] - E[x]² loses precision when the mean is large.
  float mean = 0;
  for (int64_t k = 0; k < d; ++k) mean += x[k];
  mean /= static_cast<float>(d);
  float var = 0;
  for (int64_t k = 0; k < d; ++k) var += (x[k] - mean) * (x[k] - mean);
  var /= static_cast<float>(d);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int64_t k = 0; k < d; ++k) y[k] = (x[k] - mean) * inv * gamma[k] + beta[k];
}

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void gelu_tanh(float* x, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

inline float elem(float x) { return x; }
inline float elem(uint16_t h) { return f16_to_f32(h); }

template <class E>
void weighted_values(const float* p, int64_t ldp, int64_t m, const E* values, int64_t stride, int64_t n, int64_t d,
                     float* out, int64_t ldo) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < d; ++i) out[r * ldo + i] += p[r * ldp + j] * elem(values[j * stride + i]);
}

template <class E>
void scores_tiled(const float* q, int64_t ldq, int64_t m, const E* tiles, int64_t first, int64_t n, int64_t d,
                  float scale, float* scores, int64_t lds) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const int64_t s = first + j;
      const E* key = tiles + (s / kKeyTile) * d * kKeyTile + s % kKeyTile;
      float acc = 0;
      for (int64_t i = 0; i < d; ++i) acc += q[r * ldq + i] * elem(key[i * kKeyTile]);
      scores[r * lds + j] = acc * scale;
    }
}


float sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  float s = 0;
  for (float a : acc) s += a;
  for (; i < n; ++i) s += x[i];
  return s;
}

double fma_loop(int64_t iters) {
  constexpr int kChains = 12;
  float a[kChains][4];
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < 4; ++l) a[c][l] = 0.001f * c;
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < 4; ++l) a[c][l] = a[c][l] * 0.999f + 0.0001f;
  volatile float sink = a[0][0] + a[kChains - 1][3];
  (void)sink;
  return static_cast<double>(iters) * kChains * 4 * 2;
}

}  // namespace

const KernelSet& scalar_kernels() {
  static const KernelSet k = {"scalar", Isa::Scalar, kPanelWidth, kPanelRows, gemm_direct,      pack_panel,
                              gemm_panel, quant::quantize_row_act, gemm_quant, nullptr, nullptr,
                              dot,       axpy,        add,              layer_norm_row,
                              softmax,  gelu_tanh,   weighted_values<float>,
                              scores_tiled<float>, weighted_values<uint16_t>, scores_tiled<uint16_t>, to_f16,   sum,      fma_loop, nullptr,
                              false,     nullptr, nullptr, nullptr, nullptr};
  return k;
}

}  // namespace gptneo::kernels
