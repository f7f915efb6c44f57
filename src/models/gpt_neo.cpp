// GPT-Neo (EleutherAI; transformers' GPTNeoForCausalLM).
//
//   x = wte[token] + wpe[position]
//   for each block:  x += attn(ln_1(x));  x += mlp(ln_2(x))
//   logits = ln_f(x) · wteᵀ                      (the head is tied to wte)
//
// Its attention differs from GPT-2's in two ways that matter for exactness:
// scores are NOT divided by sqrt(head_dim), and layers alternate between
// global attention and local attention over the last window_size positions.
// q, k and v have no bias; the output projection has one.
#include <fmt/format.h>

#include "gptneo/error.h"
#include "models/architecture.h"
#include "models/decoder.h"

namespace gptneo {

namespace {

// config.json: "attention_types": [[["global", "local"], 12]] expands to 24
// layers alternating global, local ("attention_layers" is the expanded list).
std::vector<AttentionKind> parse_attention_layers(const JsonFields& f) {
  auto kind = [&](const nlohmann::json& v) {
    if (v == "global") return AttentionKind::Global;
    if (v == "local") return AttentionKind::Local;
    f.fail(fmt::format("unknown attention type {} (expected \"global\" or \"local\")", v.dump()));
  };
  std::vector<AttentionKind> from_types, from_layers;
  if (f.has("attention_types")) {
    const auto& types = f.json()["attention_types"];
    if (!types.is_array()) f.fail("field \"attention_types\" must be a list of [[kinds...], repeat]");
    for (const auto& group : types) {
      if (!group.is_array() || group.size() != 2 || !group[0].is_array() || !group[1].is_number_integer() ||
          group[1].get<int64_t>() < 0)
        f.fail(fmt::format("field \"attention_types\": bad entry {} (expected [[kinds...], repeat])", group.dump()));
      for (int64_t i = 0; i < group[1].get<int64_t>(); ++i)
        for (const auto& k : group[0]) from_types.push_back(kind(k));
    }
  }
  if (f.has("attention_layers")) {
    const auto& layers = f.json()["attention_layers"];
    if (!layers.is_array()) f.fail("field \"attention_layers\" must be a list of \"global\"/\"local\"");
    for (const auto& k : layers) from_layers.push_back(kind(k));
  }
  if (!f.has("attention_types") && !f.has("attention_layers"))
    f.fail("missing field \"attention_types\" (or \"attention_layers\")");
  if (f.has("attention_types") && f.has("attention_layers") && from_types != from_layers)
    f.fail("fields \"attention_types\" and \"attention_layers\" describe different layers");
  return f.has("attention_types") ? from_types : from_layers;
}

ModelConfig parse_config(const JsonFields& f) {
  ModelConfig c;
  c.vocab_size = f.integer("vocab_size");
  c.max_positions = f.integer("max_position_embeddings");
  c.hidden_size = f.integer("hidden_size");
  c.num_layers = f.integer("num_layers");
  c.num_heads = f.integer("num_heads");
  c.intermediate_size = f.opt_integer("intermediate_size", 1).value_or(4 * c.hidden_size);
  c.layer_norm_epsilon = static_cast<float>(f.opt_number("layer_norm_epsilon").value_or(1e-5));
  c.activation = f.opt_string("activation_function").value_or("gelu_new");
  kernels::activation_from_name(c.activation);  // fails early on an unknown one
  c.attention = parse_attention_layers(f);
  bool any_local = false;
  for (auto k : c.attention) any_local |= k == AttentionKind::Local;
  if (any_local) c.window_size = f.integer("window_size");
  c.bos_token_id = static_cast<int32_t>(f.opt_integer("bos_token_id").value_or(-1));
  c.eos_token_id = static_cast<int32_t>(f.opt_integer("eos_token_id").value_or(-1));
  return c;
}

class GptNeo final : public DecoderModel {
 public:
  GptNeo(ModelConfig config, const Checkpoint& ck, const LoadOptions& options)
      : DecoderModel(std::move(config), options) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size;
    const WeightLoader w(ck, options.weights);
    // Checkpoints saved from GPTNeoModel (no LM head) lack the prefix.
    const std::string p = ck.has("transformer.wte.weight") || !ck.has("wte.weight") ? "transformer." : "";
    wte_ = w.matrix(p + "wte.weight", V, H);
    wpe_ = w.matrix_f32(p + "wpe.weight", c.max_positions, H);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string b = fmt::format("{}h.{}.", p, l);
      const std::string a = b + "attn.attention.";
      Block blk;
      blk.ln_1 = LayerNorm::load(w, b + "ln_1", H, c.layer_norm_epsilon);
      blk.ln_2 = LayerNorm::load(w, b + "ln_2", H, c.layer_norm_epsilon);
      blk.attn.qkv.w = w.stacked({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, H, H);
      blk.attn.out = Linear::load(w, a + "out_proj", H, H, true);
      blk.attn.layer = l;
      blk.attn.heads = c.num_heads;
      blk.attn.head_dim = c.head_dim();
      blk.attn.window = c.attention[l] == AttentionKind::Local ? c.window_size : 0;
      blk.attn.score_divisor = 1.0f;  // GPT-Neo does not scale its scores
      blk.mlp.fc_in = Linear::load(w, b + "mlp.c_fc", c.intermediate_size, H, true);
      blk.mlp.fc_out = Linear::load(w, b + "mlp.c_proj", H, c.intermediate_size, true);
      blk.mlp.act = kernels::activation_from_name(c.activation);
      blocks_.push_back(std::move(blk));
    }
    ln_f_ = LayerNorm::load(w, p + "ln_f", H, c.layer_norm_epsilon);
    lm_head_ = wte_;  // tied
  }

 private:
  struct Block {
    LayerNorm ln_1, ln_2;
    Attention attn;
    Mlp mlp;
  };

  void embed(const BatchLayout& batch, float* x) const override {
    const int64_t H = config_.hidden_size;
    for (int64_t r = 0; r < batch.rows(); ++r) {
      float* xr = x + r * H;
      wte_.row_f32(batch.tokens[r], xr);
      kernels::add(wpe_.f32() + batch.positions[r] * H, xr, H);
    }
  }

  void block(int64_t l, const BatchLayout& batch, Activations& act) override {
    const Block& blk = blocks_[l];
    const int64_t rows = batch.rows(), n = rows * config_.hidden_size;
    act.h.resize(n);
    act.a.resize(n);
    blk.ln_1.apply(act.x.data(), rows, act.h.data());
    blk.attn.forward(act.h.data(), batch, act.a.data(), act.attn, pool_);
    kernels::add(act.a.data(), act.x.data(), n);
    blk.ln_2.apply(act.x.data(), rows, act.h.data());
    blk.mlp.forward(act.h.data(), rows, act.a.data(), act.mlp, pool_);
    kernels::add(act.a.data(), act.x.data(), n);
  }

  size_t block_bytes() const override {
    size_t n = wpe_.bytes();
    for (const auto& b : blocks_) n += b.attn.bytes() + b.mlp.bytes() + (b.ln_1.gamma.size() + b.ln_2.gamma.size()) * 8;
    return n;
  }

  Matrix wpe_;
  std::vector<Block> blocks_;
};

}  // namespace

Architecture gpt_neo_architecture() {
  return Architecture{
      "gpt_neo", "GPTNeoForCausalLM", parse_config,
      [](ModelConfig c, const Checkpoint& ck, const LoadOptions& o) -> std::unique_ptr<Model> {
        return std::make_unique<GptNeo>(std::move(c), ck, o);
      }};
}

}  // namespace gptneo
