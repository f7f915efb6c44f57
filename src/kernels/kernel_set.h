// One implementation of the kernels for one instruction set, as a table of
// functions. kernels_scalar.cpp, kernels_avx2.cpp and kernels_avx512.cpp each
// provide one; isa.cpp picks the best the CPU runs (or the one GPTNEO_ISA
// names) once, and the generic code in linear.cpp / elementwise.cpp calls
// through it. Nothing here allocates: callers pass scratch memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gptneo/weight_format.h"
#include "kernels/quant_blocks.h"

namespace gptneo::kernels {

// Keys in the KV cache are kept in tiles of kKeyTile positions, each tile
// dimension-major ([d][kKeyTile] floats), so that one query's scores against
// kKeyTile keys are a sum of d vector multiply-adds with no horizontal sums
// (see attention_scores_tiled in kernels.h).
inline constexpr int64_t kKeyTile = 16;

// Avx512Emulated: the AVX-512 kernels built for AVX2 CPUs with the
// instructions emulated (kernels_avx512_emulated.cpp), for testing them on
// machines without AVX-512; only used when asked for.
enum class Isa { Scalar, Avx2, Avx512, Avx512Emulated };

// Weights handed to a kernel: `rows` rows of `cols` weights starting at
// `data`, row_bytes apart, in `format` (q8 / q4: with their blocks in
// `layout`, see quant::Layout).
struct WeightRows {
  WeightFormat format;
  const uint8_t* data;
  size_t row_bytes;
  int64_t rows;
  int64_t cols;
  quant::Layout layout = quant::Layout::Blocks;
};

// A unit of 64-byte-aligned scratch: a std::vector<CacheLine> is a buffer
// whose vector loads and stores may be aligned (packed activations).
struct alignas(64) CacheLine {
  char bytes[64];
};

// Rows of x per group of the packed x the *_rows kernels read.
constexpr int64_t kRowGroup = 16;

struct KernelSet {
  const char* name;
  Isa isa;
  // Width in floats of the panels pack_panel writes and gemm_panel reads,
  // and the rows of x in one tile of the packed x gemm_panel reads.
  int64_t panel_width;
  int64_t panel_rows;

  // Float weights (f32, f16, bf16): y[i * ldy + j] = dot(x row i, weight
  // row j) for i < m, j < w.rows, the weights read directly (for few rows of
  // x: decode). x rows are ldx apart.
  void (*gemm_direct)(const float* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy);
  // Packs weight rows [0, w.rows) (at most panel_width),
  // columns [k0, k0 + kc) as float32 into panel[k * panel_width + j]
  // (missing rows as zeros). k0 and kc are multiples of 32 unless
  // k0 + kc = w.cols; kc <= 512.
  void (*pack_panel)(const WeightRows& w, int64_t k0, int64_t kc, float* panel);
  // y[i * ldy + j] (+)= sum over k < kc of x(i, k) * panel[k * pw + j] for
  // i < m, j < n (n <= panel_width); accumulate: add to y, else overwrite.
  // x is packed in tiles of panel_rows rows (the last zero-padded), tile t
  // holding x(t * panel_rows + r, k) at xp[(t * kc + k) * panel_rows + r].
  void (*gemm_panel)(const float* xp, int64_t m, const float* panel, int64_t kc, int64_t n, float* y, int64_t ldy,
                     bool accumulate);

  // For q8 and q4 weights with few rows of x: activation rows are
  // quantized to int8 blocks (bit for bit as quant::quantize_row_act), then
  // y[i * ldy + j] = sum over blocks of quant::dot_block_act(weight block,
  // x block), for i < m, j < w.rows; x rows are ldx blocks apart.
  void (*quantize_act)(const float* x, int64_t cols, quant::BlockAct* out);
  void (*gemm_quant)(const quant::BlockAct* x, int64_t ldx, int64_t m, const WeightRows& w, float* y, int64_t ldy);

  // Many rows of x (prompts) with float32 weights (gemm_f32_rows, the
  // AVX-512 set) or bf16 weights on CPUs with bf16 dot products
  // (gemm_bf16_rows, AVX512-BF16), the weights read from their own rows:
  // y[i * ldy + j] = x(i) · weight row j for i < m, j < w.rows. x is packed
  // in groups of kRowGroup rows of 32-bit units (float32: one column; bf16:
  // two, rounded to bf16): unit u of row t of group g at
  // xp[(g * units + u) * kRowGroup + t] (layout: kernels/rows_avx512.h).
  // nullptr where the set has no such kernel (panels are used instead).
  void (*gemm_f32_rows)(const uint32_t* xp, int64_t m, const WeightRows& w, float* y, int64_t ldy);
  void (*gemm_bf16_rows)(const uint32_t* xp, int64_t m, const WeightRows& w, float* y, int64_t ldy);

  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*add)(const float* x, float* y, int64_t n);
  void (*layer_norm_row)(const float* x, int64_t d, const float* gamma, const float* beta, float eps, float* y);
  void (*softmax)(float* x, int64_t n);
  void (*gelu_tanh)(float* x, int64_t n);
  void (*attention_values)(const float* p, int64_t ldp, int64_t m, const float* values, int64_t stride, int64_t n,
                           int64_t d, float* out, int64_t ldo);
  void (*attention_scores_tiled)(const float* q, int64_t ldq, int64_t m, const float* tiles, int64_t first, int64_t n,
                                 int64_t d, float scale, float* scores, int64_t lds);
  // The same two over a cache kept in IEEE half (f16 bits).
  void (*attention_values_f16)(const float* p, int64_t ldp, int64_t m, const uint16_t* values, int64_t stride,
                               int64_t n, int64_t d, float* out, int64_t ldo);
  void (*attention_scores_tiled_f16)(const float* q, int64_t ldq, int64_t m, const uint16_t* tiles, int64_t first,
                                     int64_t n, int64_t d, float scale, float* scores, int64_t lds);
  // out[i] = x[i] as f16 bits (kernels.h: to_f16).
  void (*to_f16)(const float* x, int64_t n, uint16_t* out);

  // For measuring the machine (gptneo bench --bandwidth): the sum of n
  // floats, and `iters` rounds of independent register-only FMA chains
  // (returns the floating-point operations done).
  float (*sum)(const float* x, int64_t n);
  double (*fma_loop)(int64_t iters);
  // The same for the bf16 dot products (nullptr where the set has none).
  double (*bf16_dot_loop)(int64_t iters);
  // Whether gemm_quant takes q8 / q4 products with any number of rows of x
  // (prompts too), not only fewer than kQuantPanelMinRows: where the
  // integer products beat float32 panels at every size (AVX512-VNNI).
  bool int8_prompts;
  // `iters` rounds of independent register-only int8 dot-product chains
  // (vpdpbusd; returns the operations done, two per multiply-add), for the
  // arithmetic limit of int8 prompts (nullptr where the set has none).
  double (*int8_dot_loop)(int64_t iters);
  // Where gemm_quant rearranges x before multiplying (AVX512-VNNI: octets),
  // the same in two steps, so that a call rearranges x once, not once per
  // chunk of weight rows: pack_act writes rows [i0, i1) of `rows` quantized
  // rows (ldx blocks apart) of `cols` columns into `out` (64-byte aligned,
  // packed_act_bytes(rows, cols) bytes; q4: for q4 weights, else q8), and
  // gemm_quant_packed does what gemm_quant does for rows [i0, i0 + m) of
  // them. nullptr where gemm_quant reads x as it is.
  size_t (*packed_act_bytes)(int64_t rows, int64_t cols);
  void (*pack_act)(const quant::BlockAct* x, int64_t ldx, int64_t rows, int64_t i0, int64_t i1, int64_t cols, bool q4,
                   void* out);
  void (*gemm_quant_packed)(const void* packed, int64_t rows, int64_t i0, int64_t m, const WeightRows& w, float* y,
                            int64_t ldy);
  // The layout q8 / q4 weights are fastest in with gemm_quant (models
  // arrange theirs so at load: kernels::arranged_for_products). A set whose
  // layout is Octets reads Blocks too; one whose layout is Blocks reads only
  // that.
  quant::Layout weight_layout = quant::Layout::Blocks;
};

// The tables (the AVX ones are only valid to call where the CPU has the ISA).
const KernelSet& scalar_kernels();
const KernelSet& avx2_kernels();
// with_dot_products: the variant using AVX512-VNNI and AVX512-BF16.
const KernelSet& avx512_kernels(bool with_dot_products);
// Only linked where the build has it (GPTNEO_HAVE_AVX512_EMULATION).
const KernelSet& avx512_emulated_kernels();

// The table in use, chosen at first call: GPTNEO_ISA if set (an error if the
// CPU lacks it), else the best the CPU supports.
const KernelSet& active();
// Whether this CPU (and OS) can run `isa`.
bool cpu_supports(Isa isa);
// Whether the CPU has AVX512-BF16 and AVX512-VNNI; the avx512 set then uses
// them (its "avx512" table gains vpdpbusd and vdpbf16ps products).
bool cpu_has_avx512_bf16_vnni();
// Switches the table in use (tests and benchmarks); throws gptneo::Error if
// the CPU lacks it.
void set_active(Isa isa);
const char* isa_label(Isa isa);

}  // namespace gptneo::kernels
