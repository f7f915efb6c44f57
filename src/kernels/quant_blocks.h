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

// An activation row quantized for the integer dot products of the q8 / q4
// kernels (the role of llama.cpp's q8_1, with float32 scales): blocks of 32
// along the row, x[i] ≈ d * q[i], d = max|x| / 127, q rounded to nearest
// (ties to even), and s = d * sum(q) for the minimum term of q4 weights.
// Every kernel set quantizes bit for bit as quantize_row_act does.
struct BlockAct {
  float d;
  float s;
  int8_t q[32];
};
static_assert(sizeof(BlockAct) == 40 && offsetof(BlockAct, s) == 4);  // kernels read (d, s) as a pair

inline int64_t blocks_per_row(int64_t cols) { return (cols + kBlock - 1) / kBlock; }
// Bytes of one block of `f` (a quantized format).
size_t block_bytes(WeightFormat f);
// Bytes of one row of `cols` weights in format `f` (any format).
size_t row_bytes(WeightFormat f, int64_t cols);

// Quantizes one row of `cols` floats into blocks_per_row(cols) blocks at `out`.
void quantize_row_q8(const float* x, int64_t cols, BlockQ8* out);
void quantize_row_q4(const float* x, int64_t cols, BlockQ4* out);
// Quantizes one activation row of `cols` floats into blocks_per_row(cols)
// blocks (the last zero-padded): the reference every kernel set matches.
void quantize_row_act(const float* x, int64_t cols, BlockAct* out);
// The integer dot product of one weight block (q8 or q4) with one
// activation block, scaled: d_w d_x sum(q_w q_x) (+ m_w s_x for q4). The
// reference the kernels' float sums are tested against.
double dot_block_act(WeightFormat f, const uint8_t* weight_block, const BlockAct& x);

// How a quantized row's blocks lie in memory.
//  - Blocks: one after another, as above (and as files store them).
//  - Octets: the row's first 8 ⌊nb / 8⌋ blocks in runs of eight (octets)
//    arranged as the AVX512-VNNI kernels read them (kernels/int8_avx512.h),
//    so that they load them instead of rearranging them for every tile:
//      q8 octet, 272 bytes: the eight f16 d, then four 64-byte vectors,
//        byte 8β + i of vector j = q[8j + i] of block β, plus 128 (so
//        unsigned: the kernels' unsigned operand);
//      q4 octet, 160 bytes: the eight (f16 d, f16 m) pairs, then two 64-byte
//        vectors, byte 8β + i of vector j = q[8j + i] of block β.
//    The row's last blocks (fewer than eight) stay as Blocks. A row has the
//    same size and starts at the same offset in both layouts.
enum class Layout : uint8_t { Blocks, Octets };
inline constexpr int64_t kOctetBlocks = 8;

// Row `in` (cols weights of quantized format f, in layout `from`) written to
// `out` in layout `to` (in != out).
void relayout_row(WeightFormat f, int64_t cols, Layout from, const uint8_t* in, Layout to, uint8_t* out);

// The float32 values of one quantized row (cols values; padding dropped).
void dequantize_row_q8(const BlockQ8* in, int64_t cols, float* out);
void dequantize_row_q4(const BlockQ4* in, int64_t cols, float* out);

}  // namespace gptneo::quant
