// What every decoder-only architecture shares: the batch layout, the final
// LayerNorm, the output projection to logits and the activation buffers.
// An architecture supplies its embedding and its block (see gpt_neo.cpp).
#pragma once

#include <vector>

#include "core/thread_pool.h"
#include "gptneo/model.h"
#include "models/layers.h"

namespace gptneo {

// Reusable activation buffers, kept between calls so that decoding a token
// allocates nothing once the buffers have grown.
struct Activations {
  std::vector<float> x;          // [rows, hidden] the residual stream
  std::vector<float> h;          // [rows, hidden] normalised input of a sub-layer
  std::vector<float> a;          // [rows, hidden] attention output
  std::vector<float> m;          // [rows, hidden] MLP output
  std::vector<float> attn;       // attention scratch
  std::vector<float> mlp;        // [rows, intermediate]
  std::vector<float> head_in;    // [block, hidden] final-normalised rows for the head
  std::vector<float> logits;     // [block, vocab]
};

class DecoderModel : public Model {
 public:
  WeightFormat weight_format() const final { return lm_head_.format; }

 protected:
  DecoderModel(ModelConfig config, const LoadOptions& options);

  // x[rows, hidden] = the input embedding of every row of the batch.
  virtual void embed(const BatchLayout& batch, float* x) const = 0;
  // Runs block `layer` over the residual stream x[rows, hidden] in place.
  virtual void block(int64_t layer, const BatchLayout& batch, Activations& act) = 0;
  virtual size_t block_bytes() const = 0;

  // Shared by all architectures; the architecture's constructor sets them.
  LayerNorm ln_f_;
  Matrix wte_;                       // token embedding [vocab, hidden]
  Matrix lm_head_;                   // [vocab, hidden]; the same matrix as wte_ when tied
  std::vector<float> lm_head_bias_;  // empty: none
  ThreadPool pool_;

 private:
  void run(std::span<const SequenceChunk> batch, const LogitsSink& sink) final;
  size_t weight_bytes_impl() const final;
  void project_logits(const BatchLayout& layout, const LogitsSink& sink);

  Activations act_;
};

}  // namespace gptneo
