// GPT-Neo for training: the parameters, the activations the backward pass
// needs, and forward + backward over a batch of B rows of T tokens.
//
//   x = wte[tokens] + wpe[positions]
//   each block:  x = x + out_proj(attn(ln_1(x)))        (res1)
//                x = x + c_proj(act(c_fc(ln_2(x))))
//   loss = CE(ln_f(x) · wteᵀ, targets)                 (the head is tied to wte)
//
// q, k and v are stored next to each other in the parameter buffer, so the
// three projections run as one product with a [3H, H] weight. With LoRA
// adapters the base weights are frozen and only the adapters are trained.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "gptneo/model.h"
#include "train/layers.h"
#include "train/params.h"

namespace gptneo {
class Checkpoint;
}

namespace gptneo::training {

// Which projections of each block get adapters, by their short names:
// q, k, v, out (attention), fc, proj (MLP).
struct LoraSpec {
  int64_t rank = 0;  // 0: no LoRA
  double alpha = 0;  // scaling = alpha / rank
  std::vector<std::string> targets = {"q", "v"};
};
// The Hugging Face module name of a short target name ("q" -> "q_proj").
std::string lora_module_name(const std::string& target);
// Parses "q,k,v,out,fc,proj"; throws naming an unknown one.
std::vector<std::string> parse_lora_targets(const std::string& list);

class TrainModel {
 public:
  TrainModel(ModelConfig config, int threads);
  ~TrainModel();

  const ModelConfig& config() const { return config_; }
  ThreadPool& pool() { return pool_; }

  // Initial weights as transformers' GPTNeoPreTrainedModel._init_weights:
  // weights and embeddings N(0, initializer_range), biases 0, LayerNorm 1/0.
  void init_random(uint64_t seed, double std = 0.02);
  // Weights from a checkpoint (any element type; names as transformers
  // writes them, with or without the "transformer." prefix).
  void load(const Checkpoint& ck);

  // Adds LoRA adapters (A random as PEFT's kaiming-uniform, B zero) and
  // freezes the base weights.
  void add_lora(const LoraSpec& spec, uint64_t seed);
  bool has_lora() const { return lora_.rank > 0; }
  const LoraSpec& lora_spec() const { return lora_; }

  ParamSet& params() { return params_; }
  const ParamSet& params() const { return params_; }
  ParamSet& adapters() { return adapters_; }
  const ParamSet& adapters() const { return adapters_; }
  // What the optimizer updates: the adapters with LoRA, else the weights.
  ParamSet& trainable() { return has_lora() ? adapters_ : params_; }

  // Runs a batch of B × T tokens; targets[r] is the token row r must
  // predict (< 0: none). Returns Σ CE · scale over the targets and, with
  // backward, ADDS the gradients of that sum into trainable().grads (so
  // micro-batches accumulate). recompute: keep only each block's input and
  // recompute its activations during the backward pass.
  double step(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T, float scale, bool backward,
              bool recompute = false);

  // Bytes of activations step() keeps for a B × T batch.
  size_t activation_bytes(int64_t B, int64_t T, bool recompute) const;
  // Rows of logits computed at once by the head.
  int64_t logits_chunk_rows() const;

 private:
  struct Layer;
  struct Acts;
  struct LoraSlot;
  struct Buffers;
  void layer_forward(int64_t l, const float* x_in, float* x_out, Acts& a);
  void layer_backward(int64_t l, const float* x_in, Acts& a, float* dres);
  void lora_forward(const LoraSlot& s, const float* x, int64_t m, float* y, int64_t ldy, float* t_saved);
  void lora_backward(const LoraSlot& s, const float* x, int64_t m, const float* dy, int64_t ldy, const float* t_saved,
                     float* dx);
  void ensure_acts(int64_t B, int64_t T, bool recompute);

  ModelConfig config_;
  ThreadPool pool_;
  Act act_;
  ParamSet params_;
  ParamSet adapters_;
  LoraSpec lora_;
  std::vector<Layer> layers_;
  size_t wte_ = 0, wpe_ = 0, lnf_g_ = 0, lnf_b_ = 0;
  std::unique_ptr<Buffers> buf_;
  std::vector<float> frozen_sink_;  // absorbs LayerNorm gradients of frozen weights
};

}  // namespace gptneo::training
