// GPT-J (EleutherAI; transformers' GPTJForCausalLM).
//
//   x = wte[token]                                 (no learned positions)
//   for each block:  h = ln_1(x);  x = x + (attn(h) + mlp(h))   (parallel)
//   logits = ln_f(x) · lm_headᵀ + lm_head.bias    (untied head, with a bias)
//
// Attention: q, k, v and out projections without bias; rotary position
// embedding on the first rotary_dim dimensions of every query and key head,
// in GPT-J's interleaved-pair form (rotate_every_two: pairs (x0,x1), (x2,x3)
// ...; see apply_rotary in layers.h), not GPT-NeoX's rotate-half; scores
// divided by sqrt(head_dim) computed in float32 as the reference does; every
// layer global. The MLP is fc_in -> activation -> fc_out, both with bias.
//
// The vocabulary is padded to 50400 past the GPT-2 tokenizer's 50257 ids;
// the padding rows are ordinary logits here (scoring sees them all), and
// generation leaves them out (see generation_vocab_size in architecture.h).
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "models/architecture.h"
#include "models/decoder.h"

namespace gptneo {

namespace {

// transformers' GPTJConfig default, used when config.json omits the field.
constexpr int64_t kDefaultRotaryDim = 64;

ModelConfig parse_config(const JsonFields& f) {
  ModelConfig c;
  c.vocab_size = f.integer("vocab_size");
  c.max_positions = f.integer("n_positions");
  c.hidden_size = f.integer("n_embd");
  c.num_layers = f.integer("n_layer");
  c.num_heads = f.integer("n_head");
  c.intermediate_size = f.opt_integer("n_inner", 1).value_or(4 * c.hidden_size);
  c.layer_norm_epsilon = static_cast<float>(f.opt_number("layer_norm_epsilon").value_or(1e-5));
  c.activation = f.opt_string("activation_function").value_or("gelu_new");
  kernels::activation_from_name(c.activation);  // fails early on an unknown one
  c.attention.assign(static_cast<size_t>(c.num_layers), AttentionKind::Global);
  if (f.json().contains("rotary_dim") && f.json()["rotary_dim"].is_null())
    f.fail("field \"rotary_dim\" is null (rotary embedding over the whole hidden size is not supported)");
  c.rotary_dim = f.opt_integer("rotary_dim", 2).value_or(kDefaultRotaryDim);
  if (c.hidden_size % c.num_heads == 0 && (c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim()))
    f.fail(fmt::format("field \"rotary_dim\" {} must be even and at most the head size {}", c.rotary_dim,
                       c.head_dim()));
  c.bos_token_id = static_cast<int32_t>(f.opt_integer("bos_token_id").value_or(-1));
  c.eos_token_id = static_cast<int32_t>(f.opt_integer("eos_token_id").value_or(-1));
  return c;
}

bool ties_embeddings(const ModelConfig& c) {
  const auto j = nlohmann::json::parse(c.json, nullptr, false);
  return j.is_object() && j.value("tie_word_embeddings", false) == true;  // GPTJConfig's default: untied
}

class GptJ final : public DecoderModel {
 public:
  GptJ(ModelConfig config, const Checkpoint& ck, const LoadOptions& options)
      : DecoderModel(std::move(config), options) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size;
    const WeightLoader w(ck, options.weights);
    wte_ = w.matrix("transformer.wte.weight", V, H);
    // The reference computes 1/sqrt(head_dim) as a float32 tensor.
    const float scale = std::sqrt(static_cast<float>(c.head_dim()));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string b = fmt::format("transformer.h.{}.", l);
      Block blk;
      blk.ln_1 = LayerNorm::load(w, b + "ln_1", H, c.layer_norm_epsilon);
      blk.attn.qkv.w = w.stacked({b + "attn.q_proj.weight", b + "attn.k_proj.weight", b + "attn.v_proj.weight"}, H, H);
      blk.attn.out = Linear::load(w, b + "attn.out_proj", H, H, false);
      blk.attn.layer = l;
      blk.attn.heads = c.num_heads;
      blk.attn.head_dim = c.head_dim();
      blk.attn.score_divisor = scale;
      blk.attn.rotary_dim = c.rotary_dim;
      blk.mlp.fc_in = Linear::load(w, b + "mlp.fc_in", c.intermediate_size, H, true);
      blk.mlp.fc_out = Linear::load(w, b + "mlp.fc_out", H, c.intermediate_size, true);
      blk.mlp.act = kernels::activation_from_name(c.activation);
      blocks_.push_back(std::move(blk));
    }
    ln_f_ = LayerNorm::load(w, "transformer.ln_f", H, c.layer_norm_epsilon);
    lm_head_ = ties_embeddings(c) ? wte_ : w.matrix("lm_head.weight", V, H);
    lm_head_bias_ = w.vector("lm_head.bias", V);
  }

 private:
  struct Block {
    LayerNorm ln_1;
    Attention attn;
    Mlp mlp;
  };

  void embed(const BatchLayout& batch, float* x) const override {
    const int64_t H = config_.hidden_size;
    for (int64_t r = 0; r < batch.rows(); ++r) wte_.row_f32(batch.tokens[r], x + r * H);
  }

  void block(int64_t l, const BatchLayout& batch, Activations& act) override {
    const Block& blk = blocks_[l];
    const int64_t rows = batch.rows(), n = rows * config_.hidden_size;
    act.h.resize(n);
    act.a.resize(n);
    act.m.resize(n);
    blk.ln_1.apply(act.x.data(), rows, act.h.data());
    blk.attn.forward(act.h.data(), batch, act.a.data(), act.attn, pool_);
    blk.mlp.forward(act.h.data(), rows, act.m.data(), act.mlp, pool_);
    kernels::add(act.a.data(), act.m.data(), n);  // the reference adds attn + mlp, then the residual
    kernels::add(act.m.data(), act.x.data(), n);
  }

  size_t block_bytes() const override {
    size_t n = 0;
    for (const auto& b : blocks_) n += b.attn.bytes() + b.mlp.bytes() + b.ln_1.gamma.size() * 8;
    return n;
  }

  std::vector<Block> blocks_;
};

}  // namespace

Architecture gpt_j_architecture() {
  return Architecture{
      "gptj", "GPTJForCausalLM", parse_config,
      [](ModelConfig c, const Checkpoint& ck, const LoadOptions& o) -> std::unique_ptr<Model> {
        return std::make_unique<GptJ>(std::move(c), ck, o);
      }};
}

int64_t generation_vocab_size(const ModelConfig& config) {
  constexpr int64_t kGpt2Vocab = 50257;
  constexpr int32_t kGpt2EndOfText = 50256;
  if (config.vocab_size > kGpt2Vocab && config.eos_token_id == kGpt2EndOfText) return kGpt2Vocab;
  return config.vocab_size;
}

}  // namespace gptneo
