#include "kernels/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace gptneo::quant {

size_t block_bytes(WeightFormat f) {
  return f == WeightFormat::Q8 ? sizeof(BlockQ8) : f == WeightFormat::Q4 ? sizeof(BlockQ4) : 0;
}

size_t row_bytes(WeightFormat f, int64_t cols) {
  switch (f) {
    case WeightFormat::F32: return static_cast<size_t>(cols) * 4;
    case WeightFormat::F16:
    case WeightFormat::BF16: return static_cast<size_t>(cols) * 2;
    case WeightFormat::Q8:
    case WeightFormat::Q4: return static_cast<size_t>(blocks_per_row(cols)) * block_bytes(f);
  }
  return 0;
}

namespace {
// The block's values, zero-padded past the end of the row.
void block_values(const float* x, int64_t cols, int64_t b, float v[kBlock]) {
  for (int64_t i = 0; i < kBlock; ++i) {
    const int64_t k = b * kBlock + i;
    v[i] = k < cols ? x[k] : 0.0f;
  }
}

float abs_max(const float v[kBlock]) {
  float amax = 0;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::abs(v[i]));
  return amax;
}
}  // namespace

void quantize_row_q8(const float* x, int64_t cols, BlockQ8* out) {
  for (int64_t b = 0; b < blocks_per_row(cols); ++b) {
    float v[kBlock];
    block_values(x, cols, b, v);
    const float amax = abs_max(v);
    // The scale is stored as f16; quantize with the value actually stored so
    // that the rounding of the scale does not add to the error.
    const uint16_t dh = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(dh);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    out[b].d = dh;
    for (int i = 0; i < kBlock; ++i)
      out[b].q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(v[i] * inv), -127.0f, 127.0f));
  }
}

void quantize_row_q4(const float* x, int64_t cols, BlockQ4* out) {
  for (int64_t b = 0; b < blocks_per_row(cols); ++b) {
    float v[kBlock];
    block_values(x, cols, b, v);
    const int64_t n = std::min<int64_t>(kBlock, cols - b * kBlock);  // real values (padding is not fitted)
    float lo = v[0], hi = v[0];
    for (int64_t i = 1; i < n; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    const uint16_t mh = f32_to_f16(lo);
    const float m = f16_to_f32(mh);
    const uint16_t dh = f32_to_f16((hi - m) / 15.0f);
    const float d = f16_to_f32(dh);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    out[b].d = dh;
    out[b].m = mh;
    uint8_t q[kBlock];
    for (int i = 0; i < kBlock; ++i) q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint((v[i] - m) * inv), 0.0f, 15.0f));
    for (int i = 0; i < 16; ++i) out[b].q[i] = static_cast<uint8_t>(q[i] | (q[i + 16] << 4));
  }
}

void quantize_row_act(const float* x, int64_t cols, BlockAct* out) {
  for (int64_t b = 0; b < blocks_per_row(cols); ++b) {
    float v[kBlock];
    block_values(x, cols, b, v);
    const float amax = abs_max(v);
    // The SIMD versions compute exactly these float operations (one
    // division, one multiplication per value, round to nearest even), so the
    // integers are the same in every kernel set.
    const float d = amax / 127.0f;
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      // (A NaN, from a broken model, becomes -128 as cvtps2dq + saturating
      // packs make it; finite values lie within ±127.)
      const float r = std::nearbyint(v[i] * inv);
      const auto q = std::isnan(r) ? -128 : static_cast<int32_t>(std::clamp(r, -128.0f, 127.0f));
      out[b].q[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].s = d * static_cast<float>(sum);
  }
}

double dot_block_act(WeightFormat f, const uint8_t* weight_block, const BlockAct& x) {
  int64_t isum = 0;
  if (f == WeightFormat::Q8) {
    BlockQ8 w;
    std::memcpy(&w, weight_block, sizeof w);
    for (int i = 0; i < kBlock; ++i) isum += int64_t(w.q[i]) * x.q[i];
    return double(f16_to_f32(w.d)) * x.d * double(isum);
  }
  BlockQ4 w;
  std::memcpy(&w, weight_block, sizeof w);
  for (int i = 0; i < 16; ++i) isum += int64_t(w.q[i] & 15) * x.q[i] + int64_t(w.q[i] >> 4) * x.q[i + 16];
  return double(f16_to_f32(w.d)) * x.d * double(isum) + double(f16_to_f32(w.m)) * x.s;
}

void dequantize_row_q8(const BlockQ8* in, int64_t cols, float* out) {
  for (int64_t k = 0; k < cols; ++k) {
    const BlockQ8& blk = in[k / kBlock];
    out[k] = f16_to_f32(blk.d) * blk.q[k % kBlock];
  }
}

void dequantize_row_q4(const BlockQ4* in, int64_t cols, float* out) {
  for (int64_t k = 0; k < cols; ++k) {
    const BlockQ4& blk = in[k / kBlock];
    const int i = static_cast<int>(k % kBlock);
    const int q = i < 16 ? blk.q[i] & 15 : blk.q[i - 16] >> 4;
    out[k] = f16_to_f32(blk.d) * static_cast<float>(q) + f16_to_f32(blk.m);
  }
}

namespace {

// One octet of q8 / q4 weights from `in` (8 blocks in layout `from`) to
// `out` in the other layout: each block's scale bytes, then its weight bytes
// (byte k of block β at byte 8β + k % 8 of vector k / 8; q8 made unsigned).
void relayout_octet(WeightFormat f, const uint8_t* in, Layout from, uint8_t* out) {
  const bool q8 = f == WeightFormat::Q8, to_octets = from == Layout::Blocks;
  const size_t bb = block_bytes(f), head = q8 ? 2 : 4, q_bytes = q8 ? 32 : 16;
  const size_t scales = kOctetBlocks * head;  // where the octet's vectors start
  const uint8_t flip = q8 ? 0x80 : 0x00;
  for (int64_t beta = 0; beta < kOctetBlocks; ++beta) {
    const size_t block = static_cast<size_t>(beta) * bb, scale = static_cast<size_t>(beta) * head;
    std::memcpy(to_octets ? out + scale : out + block, to_octets ? in + block : in + scale, head);
    for (size_t k = 0; k < q_bytes; ++k) {
      const size_t plain = block + head + k, arranged = scales + (k / 8) * 64 + static_cast<size_t>(beta) * 8 + k % 8;
      if (to_octets)
        out[arranged] = in[plain] ^ flip;
      else
        out[plain] = in[arranged] ^ flip;
    }
  }
}

}  // namespace

void relayout_row(WeightFormat f, int64_t cols, Layout from, const uint8_t* in, Layout to, uint8_t* out) {
  const size_t octet_bytes = kOctetBlocks * block_bytes(f);
  const size_t arranged = from == to ? 0 : static_cast<size_t>(blocks_per_row(cols) / kOctetBlocks) * octet_bytes;
  for (size_t o = 0; o < arranged; o += octet_bytes) relayout_octet(f, in + o, from, out + o);
  // The rest (fewer than eight blocks, or all of a row already in `to`) as it is.
  std::memcpy(out + arranged, in + arranged, row_bytes(f, cols) - arranged);
}

}  // namespace gptneo::quant
