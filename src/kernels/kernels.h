// The numerical primitives the models are written in.
//
// Model code calls only these functions; how they are computed (which ISA,
// how many threads, which weight format) is decided here. Each primitive has
// a plain scalar reference in kernels/reference.h against which the fast
// versions are tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "gptneo/weight_format.h"
#include "kernels/kernel_set.h"  // kKeyTile

namespace gptneo {

// A weight matrix of `rows` outputs by `cols` inputs, row-major (the layout
// of torch.nn.Linear.weight), in one of the weight formats. Rows follow each
// other with no gap; a row of a quantized format is a run of blocks of 32
// weights (kernels/quant_blocks.h), one after another or arranged in octets
// for the AVX512-VNNI kernels (`layout`).
struct Matrix {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  std::shared_ptr<const void> storage;  // owns `data` (or the mapped file it lies in)
  // q8 / q4: how each row's blocks lie (quant::Layout; files hold Blocks).
  quant::Layout layout = quant::Layout::Blocks;

  const float* f32() const { return static_cast<const float*>(data); }
  // Bytes of one row, and of the whole matrix.
  size_t row_bytes() const;
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + row_bytes() * static_cast<size_t>(r); }
  // A float32 copy of row r (for embedding lookups).
  void row_f32(int64_t r, float* out) const;
};

// Makes an owned float32 matrix (contents uninitialised).
Matrix make_f32_matrix(int64_t rows, int64_t cols);
// Converts a matrix to `format` (a copy; returns `m` itself when it is
// already in that format). Quantizing uses several threads of `pool` when given.
Matrix convert_matrix(const Matrix& m, WeightFormat format, ThreadPool* pool = nullptr);
// A q8 / q4 matrix with its rows in `layout` (a copy; `m` itself when it is
// already so, or not quantized).
Matrix with_layout(const Matrix& m, quant::Layout layout, ThreadPool* pool = nullptr);

namespace kernels {

// y[m, w.rows] = x[m, w.cols] · wᵀ (+ bias[w.rows] when bias != nullptr).
// Split over threads by output columns (decode) or rows and columns (prefill).
// q8 / q4 weights with fewer than kQuantPanelMinRows rows of x use integer
// dot products: each x row is first quantized to int8 blocks of 32 (see
// quant::BlockAct), as llama.cpp does. With more rows the weights are widened
// to float32 and multiplied exactly where that is faster (AVX2, AVX-512
// without VNNI: measured); with AVX512-VNNI the integer products are faster
// at every size and take prompts too (int8_products()).
constexpr int64_t kQuantPanelMinRows = 32;
// From this many rows of x on, float weights are packed into panels. bf16
// weights from here on are multiplied with x rounded to bf16 where the
// kernel set has bf16 dot products (bf16_dot_products()).
constexpr int64_t kPackedMinRows = 8;
void linear(const float* x, int64_t m, const Matrix& w, const float* bias, float* y, ThreadPool& pool);
// `w` in the layout the active kernel set multiplies fastest
// (KernelSet::weight_layout: q8 / q4 octets with AVX512-VNNI), for a model
// to keep: a copy where it differs, else `w`. (linear takes any layout; an
// Octets matrix given to a set that reads only Blocks, which happens only
// when the set is switched after loading, is rearranged on every call.)
Matrix arranged_for_products(const Matrix& w, ThreadPool* pool = nullptr);

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta for each of the
// m rows of length d (biased variance, as torch.nn.LayerNorm). y may equal x.
void layer_norm(const float* x, int64_t m, int64_t d, const float* gamma, const float* beta,
                float eps, float* y);

// Activation functions of the MLP, in place over n values.
enum class Activation { GeluNew, Gelu, GeluFast, Relu, Silu };
// Parses a Hugging Face `activation_function` name; throws gptneo::Error if unknown.
Activation activation_from_name(const std::string& name);
void activate(Activation a, float* x, int64_t n);

// In-place softmax of n values, computed in float32 with the maximum
// subtracted first; entries equal to -inf become exactly 0.
void softmax(float* x, int64_t n);

// Sum of a[i] * b[i].
float dot(const float* a, const float* b, int64_t n);
// Attention. The weighted values of m queries at once over n value rows
// `stride` floats apart (each value row is read once for all of them):
// out[r * ldo + i] += sum over j of p[r * ldp + j] * values[j * stride + i],
// for r < m, i < d.
void attention_values(const float* p, int64_t ldp, int64_t m, const float* values, int64_t stride, int64_t n,
                      int64_t d, float* out, int64_t ldo);
// Scores of m queries (rows ldq floats apart) against keys kept in tiles
// (the KV cache's layout): tile t holds the keys [t, t + 1) × kKeyTile as
// [d][kKeyTile] floats, tiles follow each other, and key s, dimension i is
// tiles[(s / kKeyTile) × d × kKeyTile + i × kKeyTile + s % kKeyTile].
// Writes scores[r * lds + j] = dot(q_r, key first + j) * scale for j < n
// (other keys of the tiles touched are read, not used). Several queries
// share each load of a tile row.
void attention_scores_tiled(const float* q, int64_t ldq, int64_t m, const float* tiles, int64_t first, int64_t n,
                            int64_t d, float scale, float* scores, int64_t lds);
// The same two for a cache kept in IEEE half precision (f16 bits), read as
// float32; the sums stay float32.
void attention_values(const float* p, int64_t ldp, int64_t m, const uint16_t* values, int64_t stride, int64_t n,
                      int64_t d, float* out, int64_t ldo);
void attention_scores_tiled(const float* q, int64_t ldq, int64_t m, const uint16_t* tiles, int64_t first, int64_t n,
                            int64_t d, float scale, float* scores, int64_t lds);
// out[i] = x[i] as IEEE half bits, rounded to nearest even; values beyond
// half's range as ±65504 (its largest finite value), not infinities; NaN
// stays NaN. How keys and values go into an f16 KV cache.
void to_f16(const float* x, int64_t n, uint16_t* out);
// y[i] += a * x[i].
void axpy(float a, const float* x, float* y, int64_t n);
// y[i] += x[i].
void add(const float* x, float* y, int64_t n);

// The machine's limits, measured on all threads of `pool` with the active
// kernel set: memory read bandwidth in bytes/s (summing a buffer of `bytes`,
// far larger than the caches; best of a few passes), and the float32 FMA
// rate in FLOP/s of a register-only loop.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30);
double measure_fma_peak(ThreadPool& pool);
// The same for the bf16 dot products (vdpbf16ps); 0 where the kernel set
// has none (bf16_dot_products() is false).
double measure_bf16_peak(ThreadPool& pool);
// The same for the int8 dot products (vpdpbusd) that q8 / q4 prompts run on
// where int8_products says so, in operations/s (two per multiply-add); 0
// where the kernel set has none.
double measure_int8_peak(ThreadPool& pool);

// The kernel set in use ("scalar", "avx2" or "avx512"),
// chosen from CPUID at first use or forced with GPTNEO_ISA=scalar|avx2|avx512.
std::string isa_name();
// Whether the kernel set in use multiplies bf16 weights with bf16-rounded
// activations (AVX512-BF16; see kPackedMinRows).
bool bf16_dot_products();
// Whether the kernel set in use multiplies q8 / q4 weights with `m` rows of
// x in int8 (activations quantized per block, the same bits for a row at
// every m), rather than widening the weights to float32 (see
// kQuantPanelMinRows).
bool int8_products(int64_t m);

}  // namespace kernels
}  // namespace gptneo
