// The block-quantized weight formats, byte for byte.
//
// A row of `cols` weights is cut into blocks of 32 along the row (the last
// one zero-padded), stored one after another with nothing between blocks or
// rows, so that row r of a matrix starts at r * row_bytes(cols):
//
//   q8 block, 34 bytes: f16 d, int8 q[32]            w[i] = d * q[i]
//   q4 block, 20 bytes: f16 d, f16 m, uint8 q[16]    w[i] = d * nibble(i) + m
//     nibble(i) = q[i] & 15 for i < 16, q[i - 16] >> 4 for i >= 16
//
// (the layouts of llama.cpp's q8_0 and q4_1). These bytes are also what a
// quantized model folder stores; see docs/performance.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gptneo/weight_format.h"

namespace gptneo::quant {

constexpr int64_t kBlock = 32;

struct BlockQ8 {
  uint16_t d;
  int8_t q[32];
};
struct BlockQ4 {
  uint16_t d;
  uint16_t m;
  uint8_t q[16];
};
static_assert(sizeof(BlockQ8) == 34 && alignof(BlockQ8) == 2);
static_assert(sizeof(BlockQ4) == 20 && alignof(BlockQ4) == 2);

inline int64_t blocks_per_row(int64_t cols) { return (cols + kBlock - 1) / kBlock; }
// Bytes of one block of `f` (a quantized format).
size_t block_bytes(WeightFormat f);
// Bytes of one row of `cols` weights in format `f` (any format).
size_t row_bytes(WeightFormat f, int64_t cols);

// Quantizes one row of `cols` floats into blocks_per_row(cols) blocks at `out`.
void quantize_row_q8(const float* x, int64_t cols, BlockQ8* out);
void quantize_row_q4(const float* x, int64_t cols, BlockQ4* out);
// The float32 values of one quantized row (cols values; padding dropped).
void dequantize_row_q8(const BlockQ8* in, int64_t cols, float* out);
void dequantize_row_q4(const BlockQ4* in, int64_t cols, float* out);

}  // namespace gptneo::quant
