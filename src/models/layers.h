// The building blocks every architecture is assembled from: embeddings,
// LayerNorm, linear projections, the MLP and self-attention with a mask
// policy. Each holds its weights and runs over all rows of a batch at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "kernels/kernels.h"
#include "models/kv_cache.h"

namespace gptneo {

// Where the rows of a batch come from: the new tokens of several sequences,
// concatenated. Row r is token `tokens[r]` at position `positions[r]` of
// sequence `row_seq[r]`.
struct BatchLayout {
  struct Seq {
    KVCacheImpl* cache;
    int64_t first_row;  // its rows are [first_row, first_row + rows)
    int64_t rows;
    int64_t start;      // position of its first new token (= cache length before)
    bool all_logits;
    int64_t skip_logits;
  };
  std::vector<Seq> seqs;
  std::vector<TokenId> tokens;
  std::vector<int64_t> positions;
  std::vector<int32_t> row_seq;
  int64_t rows() const { return static_cast<int64_t>(tokens.size()); }
};

// Reads weights out of a checkpoint, converting them to float32 and checking
// their shapes against the config.
class WeightLoader {
 public:
  WeightLoader(const Checkpoint& ck, WeightFormat format) : ck_(ck), format_(format) {}
  std::vector<float> vector(const std::string& name, int64_t n) const;
  // A [rows, cols] matrix in the model's weight format (quantized at load:
  // in the layout the kernels multiply fastest, kernels::arranged_for_products).
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const;
  // Several matrices with the same number of columns stacked row-wise (e.g.
  // q, k and v into one projection), in the model's weight format (and
  // layout, as matrix()).
  Matrix stacked(const std::vector<std::string>& names, int64_t rows_each, int64_t cols) const;
  // A float32 matrix regardless of the model's format (for embeddings).
  Matrix matrix_f32(const std::string& name, int64_t rows, int64_t cols) const;
  bool has(const std::string& name) const { return ck_.has(name); }

 private:
  // A matrix made at load in the kernels' preferred layout.
  Matrix arranged(const Matrix& m) const;

  const Checkpoint& ck_;
  WeightFormat format_;
};

struct LayerNorm {
  std::vector<float> gamma, beta;
  float eps = 1e-5f;
  static LayerNorm load(const WeightLoader& w, const std::string& prefix, int64_t dim, float eps);
  void apply(const float* x, int64_t rows, float* y) const;
};

// y = x · Wᵀ + b (b optional).
struct Linear {
  Matrix w;
  std::vector<float> b;  // empty: no bias
  static Linear load(const WeightLoader& w, const std::string& prefix, int64_t out, int64_t in, bool bias);
  void apply(const float* x, int64_t rows, float* y, ThreadPool& pool) const;
  size_t bytes() const { return w.bytes() + b.size() * sizeof(float); }
};

// fc_out(act(fc_in(x))).
struct Mlp {
  Linear fc_in, fc_out;
  kernels::Activation act = kernels::Activation::GeluNew;
  // out[rows, hidden]; `hidden_buf` holds rows × intermediate floats.
  void forward(const float* x, int64_t rows, float* out, std::vector<float>& hidden_buf, ThreadPool& pool) const;
  size_t bytes() const { return fc_in.bytes() + fc_out.bytes(); }
};

// Multi-head causal self-attention over a batch of sequences with caches.
struct Attention {
  Linear qkv;            // q, k and v stacked: [3 × hidden, hidden]
  Linear out;            // output projection
  int64_t layer = 0;     // index of this layer's keys and values in the caches
  int64_t heads = 0, head_dim = 0;
  int64_t window = 0;    // > 0: local attention over the last `window` positions
  float score_divisor = 1.0f;  // scores are q·k / score_divisor
  int64_t rotary_dim = 0;      // > 0: rotary embedding (GPT-J's interleaved pairs)

  // out[rows, hidden] = attention of the batch's rows; stores their keys and
  // values in the sequences' caches (the caller advances the caches after
  // the last layer).
  void forward(const float* x, const BatchLayout& batch, float* out, std::vector<float>& scratch,
               ThreadPool& pool) const;
  size_t bytes() const { return qkv.bytes() + out.bytes(); }

 private:
  void attend(const float* qkv_rows, const BatchLayout& batch, float* att, bool store, ThreadPool& pool) const;
  bool can_store_while_attending(const BatchLayout& batch) const;
  void store_kv(const float* qkv_rows, const BatchLayout& batch, ThreadPool& pool) const;
  // Stores head h's keys and values of rows [i0, i1) of `seq` into its cache.
  void store_rows(const float* qkv_rows, const BatchLayout::Seq& seq, int64_t h, int64_t i0, int64_t i1) const;
};

// Applies GPT-J-style rotary position embedding in place to the first
// `rotary_dim` dimensions of each head of a [heads × head_dim] vector:
// pairs (x[2i], x[2i+1]) are rotated by position × 10000^(-2i/rotary_dim).
void apply_rotary(float* v, int64_t heads, int64_t head_dim, int64_t rotary_dim, int64_t position);

}  // namespace gptneo
