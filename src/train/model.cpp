#include "train/model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gptneo/error.h"
#include "io/checkpoint.h"
#include "train/gemm.h"

namespace gptneo::training {

namespace {

struct TargetName {
  const char* short_name;
  const char* module;
};
constexpr TargetName kTargets[] = {{"q", "q_proj"},   {"k", "k_proj"}, {"v", "v_proj"},
                                   {"out", "out_proj"}, {"fc", "c_fc"}, {"proj", "c_proj"}};

std::string module_path(int64_t layer, const std::string& target) {
  const std::string m = lora_module_name(target);
  const bool attn = target == "q" || target == "k" || target == "v" || target == "out";
  return fmt::format("transformer.h.{}.{}.{}", layer, attn ? "attn.attention" : "mlp", m);
}

// Memory for the logits of the head: rows are processed in chunks of at
// most this many floats.
constexpr int64_t kLogitsBudgetFloats = int64_t(64) << 20;

}  // namespace

std::string lora_module_name(const std::string& target) {
  for (const auto& t : kTargets)
    if (target == t.short_name) return t.module;
  throw Error(fmt::format("unknown LoRA target \"{}\" (expected q, k, v, out, fc or proj)", target));
}

std::vector<std::string> parse_lora_targets(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string t = list.substr(start, comma - start);
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    if (t.empty()) throw Error(fmt::format("--lora-targets \"{}\": empty name", list));
    lora_module_name(t);  // validates
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    start = comma + 1;
  }
  return out;
}

// Offsets of one block's tensors in the parameter buffer.
struct TrainModel::Layer {
  size_t ln1_g, ln1_b, wqkv, wo, bo, ln2_g, ln2_b, wfc, bfc, wproj, bproj;
  std::vector<LoraSlot> lora;
};

// One adapter: y[:, col : col + out] += scale · (x · Aᵀ) · Bᵀ.
struct TrainModel::LoraSlot {
  std::string target;
  size_t a = 0, b = 0;  // offsets in adapters_
  int64_t in = 0, out = 0, col = 0;
  size_t t_offset = 0;  // of its saved x·Aᵀ·scale in Acts::lora_t, in units of M × rank
};

// What one block's forward keeps for its backward.
struct TrainModel::Acts {
  std::vector<float> ln1, ln1_mean, ln1_rstd, qkv, probs, atty, res1, ln2, ln2_mean, ln2_rstd, fc, fc_act, lora_t;
  size_t bytes() const {
    size_t n = 0;
    for (const auto* v : {&ln1, &ln1_mean, &ln1_rstd, &qkv, &probs, &atty, &res1, &ln2, &ln2_mean, &ln2_rstd, &fc,
                          &fc_act, &lora_t})
      n += v->size() * sizeof(float);
    return n;
  }
};

struct TrainModel::Buffers {
  int64_t B = 0, T = 0;
  bool recompute = false;
  std::vector<std::vector<float>> x;  // the residual stream entering each block, and after the last
  std::vector<Acts> acts;             // one per block, or one shared with recompute
  std::vector<float> lnf, lnf_mean, lnf_rstd;
  std::vector<float> dres, dh, dbig, dqkv, datt, lora_dt;  // backward scratch
};

TrainModel::TrainModel(ModelConfig config, int threads)
    : config_(std::move(config)), pool_(threads), act_(act_from_name(config_.activation)) {
  const ModelConfig& c = config_;
  if (c.model_type != "gpt_neo")
    throw Error(fmt::format("training supports GPT-Neo models only (model_type \"gpt_neo\"), not \"{}\"",
                            c.model_type));
  if (c.hidden_size % c.num_heads != 0)
    throw Error(fmt::format("hidden_size {} is not a multiple of num_heads {}", c.hidden_size, c.num_heads));
  const int64_t V = c.vocab_size, H = c.hidden_size, I = c.intermediate_size;
  wte_ = params_.add("transformer.wte.weight", {V, H});
  wpe_ = params_.add("transformer.wpe.weight", {c.max_positions, H});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string b = fmt::format("transformer.h.{}.", l), a = b + "attn.attention.";
    Layer L;
    L.ln1_g = params_.add(b + "ln_1.weight", {H});
    L.ln1_b = params_.add(b + "ln_1.bias", {H});
    L.wqkv = params_.add(a + "q_proj.weight", {H, H});  // k and v follow: one [3H, H] matrix
    params_.add(a + "k_proj.weight", {H, H});
    params_.add(a + "v_proj.weight", {H, H});
    L.wo = params_.add(a + "out_proj.weight", {H, H});
    L.bo = params_.add(a + "out_proj.bias", {H});
    L.ln2_g = params_.add(b + "ln_2.weight", {H});
    L.ln2_b = params_.add(b + "ln_2.bias", {H});
    L.wfc = params_.add(b + "mlp.c_fc.weight", {I, H});
    L.bfc = params_.add(b + "mlp.c_fc.bias", {I});
    L.wproj = params_.add(b + "mlp.c_proj.weight", {H, I});
    L.bproj = params_.add(b + "mlp.c_proj.bias", {H});
    layers_.push_back(std::move(L));
  }
  lnf_g_ = params_.add("transformer.ln_f.weight", {H});
  lnf_b_ = params_.add("transformer.ln_f.bias", {H});
  params_.allocate();
  frozen_sink_.assign(static_cast<size_t>(std::max(H, I)), 0.0f);
}

TrainModel::~TrainModel() = default;

void TrainModel::init_random(uint64_t seed, double std_dev) {
  Rng rng(seed);
  for (const ParamInfo& p : params_.infos()) {
    float* v = params_.value(p.offset);
    const bool ln_weight = p.shape.size() == 1 && p.name.find(".ln_") != std::string::npos &&
                           p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0;
    if (p.shape.size() >= 2)
      for (size_t i = 0; i < p.numel; ++i) v[i] = static_cast<float>(rng.normal() * std_dev);
    else
      std::fill(v, v + p.numel, ln_weight ? 1.0f : 0.0f);
  }
}

void TrainModel::load(const Checkpoint& ck) {
  const bool prefixed = ck.has("transformer.wte.weight") || !ck.has("wte.weight");
  for (const ParamInfo& p : params_.infos()) {
    const std::string name = prefixed ? p.name : p.name.substr(std::string("transformer.").size());
    const TensorView& t = ck.get(name, p.shape);
    if (!dtype_is_float(t.dtype))
      throw Error(fmt::format("tensor '{}' in {} is {}, not a floating-point type", name, t.source,
                              dtype_name(t.dtype)));
    convert_to_f32(t.dtype, t.data, p.numel, params_.value(p.offset));
  }
}

void TrainModel::add_lora(const LoraSpec& spec, uint64_t seed) {
  if (spec.rank <= 0) throw Error("--lora-rank must be positive");
  if (spec.targets.empty()) throw Error("LoRA needs at least one target projection");
  lora_ = spec;
  if (lora_.alpha <= 0) lora_.alpha = static_cast<double>(spec.rank);
  const int64_t H = config_.hidden_size, I = config_.intermediate_size, r = spec.rank;
  adapters_ = ParamSet();
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    Layer& L = layers_[static_cast<size_t>(l)];
    L.lora.clear();
    for (const std::string& target : spec.targets) {
      LoraSlot s;
      s.target = target;
      s.in = target == "proj" ? I : H;
      s.out = target == "fc" ? I : H;
      s.col = target == "k" ? H : target == "v" ? 2 * H : 0;
      const std::string base = "base_model.model." + module_path(l, target);
      s.a = adapters_.add(base + ".lora_A.weight", {r, s.in});
      s.b = adapters_.add(base + ".lora_B.weight", {s.out, r});
      s.t_offset = L.lora.size();
      L.lora.push_back(s);
    }
  }
  adapters_.allocate();
  // PEFT's default init: A ~ kaiming_uniform(a = √5) = U(-1/√in, 1/√in), B = 0,
  // so training starts from the base model's outputs exactly.
  Rng rng(seed ^ 0x4C6F5241ull);
  for (const Layer& L : layers_)
    for (const LoraSlot& s : L.lora) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(s.in));
      float* a = adapters_.value(s.a);
      for (int64_t i = 0; i < r * s.in; ++i) a[i] = static_cast<float>((2 * rng.uniform() - 1) * bound);
    }
  buf_.reset();  // activation layout changes
}

int64_t TrainModel::logits_chunk_rows() const { return std::max<int64_t>(16, kLogitsBudgetFloats / config_.vocab_size); }

void TrainModel::ensure_acts(int64_t B, int64_t T, bool recompute) {
  if (buf_ && buf_->B == B && buf_->T == T && buf_->recompute == recompute) return;
  const ModelConfig& c = config_;
  if (T > c.max_positions)
    throw Error(fmt::format("sequence length {} exceeds the model's {} positions (max_position_embeddings)", T,
                            c.max_positions));
  const auto M = static_cast<size_t>(B * T), H = static_cast<size_t>(c.hidden_size),
             I = static_cast<size_t>(c.intermediate_size);
  const size_t slots = layers_.empty() ? 0 : layers_[0].lora.size();
  buf_ = std::make_unique<Buffers>();
  buf_->B = B, buf_->T = T, buf_->recompute = recompute;
  buf_->x.assign(static_cast<size_t>(c.num_layers + 1), std::vector<float>(M * H));
  buf_->acts.resize(recompute ? 1 : static_cast<size_t>(c.num_layers));
  for (Acts& a : buf_->acts) {
    a.ln1.resize(M * H), a.ln1_mean.resize(M), a.ln1_rstd.resize(M);
    a.qkv.resize(3 * M * H);
    a.probs.resize(static_cast<size_t>(B * c.num_heads * T * T));
    a.atty.resize(M * H), a.res1.resize(M * H);
    a.ln2.resize(M * H), a.ln2_mean.resize(M), a.ln2_rstd.resize(M);
    a.fc.resize(M * I), a.fc_act.resize(M * I);
    a.lora_t.resize(slots * M * static_cast<size_t>(lora_.rank));
  }
  buf_->lnf.resize(M * H), buf_->lnf_mean.resize(M), buf_->lnf_rstd.resize(M);
  buf_->dres.resize(M * H), buf_->dh.resize(M * H), buf_->datt.resize(M * H);
  buf_->dbig.resize(M * I), buf_->dqkv.resize(3 * M * H);
  buf_->lora_dt.resize(M * static_cast<size_t>(std::max<int64_t>(lora_.rank, 0)));
}

size_t TrainModel::activation_bytes(int64_t B, int64_t T, bool recompute) const {
  const ModelConfig& c = config_;
  const int64_t M = B * T, H = c.hidden_size, I = c.intermediate_size, L = c.num_layers;
  const int64_t slots = layers_.empty() ? 0 : static_cast<int64_t>(layers_[0].lora.size());
  const int64_t per_block = 7 * M * H + 4 * M + B * c.num_heads * T * T + 2 * M * I + slots * M * lora_.rank;
  const int64_t blocks = recompute ? 1 : L;
  const int64_t stream = (L + 1) * M * H + M * H + 2 * M;
  const int64_t grads = 6 * M * H + M * I + M * std::max<int64_t>(lora_.rank, 0);
  const int64_t logits = std::min(M, logits_chunk_rows()) * c.vocab_size;
  return static_cast<size_t>(per_block * blocks + stream + grads + logits) * sizeof(float);
}

// ---- LoRA ------------------------------------------------------------------------------

void TrainModel::lora_forward(const LoraSlot& s, const float* x, int64_t m, float* y, int64_t ldy, float* t) {
  const int64_t r = lora_.rank;
  const float scale = static_cast<float>(lora_.alpha / static_cast<double>(r));
  gemm(GemmArgs{Trans::No, Trans::Yes, m, r, s.in, s.in, s.in, r, false}, x, adapters_.value(s.a), t, &pool_);
  for (int64_t i = 0; i < m * r; ++i) t[i] *= scale;
  gemm(GemmArgs{Trans::No, Trans::Yes, m, s.out, r, r, r, ldy, true}, t, adapters_.value(s.b), y + s.col, &pool_);
}

void TrainModel::lora_backward(const LoraSlot& s, const float* x, int64_t m, const float* dy, int64_t ldy,
                               const float* t, float* dx) {
  const int64_t r = lora_.rank;
  const float scale = static_cast<float>(lora_.alpha / static_cast<double>(r));
  float* dt = buf_->lora_dt.data();
  dy += s.col;
  // dB += dyᵀ · t, dt = scale · dy · B, dA += dtᵀ · x, dx += dt · A
  gemm(GemmArgs{Trans::Yes, Trans::No, s.out, r, m, ldy, r, r, true}, dy, t, adapters_.grad(s.b), &pool_);
  gemm(GemmArgs{Trans::No, Trans::No, m, r, s.out, ldy, r, r, false}, dy, adapters_.value(s.b), dt, &pool_);
  for (int64_t i = 0; i < m * r; ++i) dt[i] *= scale;
  gemm(GemmArgs{Trans::Yes, Trans::No, r, s.in, m, r, s.in, s.in, true}, dt, x, adapters_.grad(s.a), &pool_);
  gemm(GemmArgs{Trans::No, Trans::No, m, s.in, r, r, s.in, s.in, true}, dt, adapters_.value(s.a), dx, &pool_);
}

// ---- one block ---------------------------------------------------------------------------

void TrainModel::layer_forward(int64_t l, const float* x_in, float* x_out, Acts& a) {
  const ModelConfig& c = config_;
  const Layer& L = layers_[static_cast<size_t>(l)];
  const int64_t M = buf_->B * buf_->T, H = c.hidden_size, I = c.intermediate_size;
  const float eps = c.layer_norm_epsilon;
  ParamSet& P = params_;
  auto t_of = [&](const LoraSlot& s) { return a.lora_t.data() + s.t_offset * M * lora_.rank; };
  auto adapters_on = [&](std::initializer_list<const char*> targets, const float* x, float* y, int64_t ldy) {
    for (const LoraSlot& s : L.lora)
      for (const char* t : targets)
        if (s.target == t) lora_forward(s, x, M, y, ldy, t_of(s));
  };

  layer_norm_forward(x_in, M, H, P.value(L.ln1_g), P.value(L.ln1_b), eps, a.ln1.data(), a.ln1_mean.data(),
                     a.ln1_rstd.data(), &pool_);
  linear_forward(a.ln1.data(), M, H, P.value(L.wqkv), 3 * H, a.qkv.data(), &pool_);
  adapters_on({"q", "k", "v"}, a.ln1.data(), a.qkv.data(), 3 * H);
  const AttentionShape shape{buf_->B, buf_->T, c.num_heads, c.head_dim(),
                             c.attention[static_cast<size_t>(l)] == AttentionKind::Local ? c.window_size : 0};
  attention_forward(shape, a.qkv.data(), a.probs.data(), a.atty.data(), &pool_);
  linear_forward(a.atty.data(), M, H, P.value(L.wo), H, a.res1.data(), &pool_);
  adapters_on({"out"}, a.atty.data(), a.res1.data(), H);
  add_bias(a.res1.data(), M, H, P.value(L.bo), &pool_);
  add_inplace(x_in, a.res1.data(), M * H, &pool_);

  layer_norm_forward(a.res1.data(), M, H, P.value(L.ln2_g), P.value(L.ln2_b), eps, a.ln2.data(), a.ln2_mean.data(),
                     a.ln2_rstd.data(), &pool_);
  linear_forward(a.ln2.data(), M, H, P.value(L.wfc), I, a.fc.data(), &pool_);
  adapters_on({"fc"}, a.ln2.data(), a.fc.data(), I);
  add_bias(a.fc.data(), M, I, P.value(L.bfc), &pool_);
  act_forward(act_, a.fc.data(), a.fc_act.data(), M * I, &pool_);
  linear_forward(a.fc_act.data(), M, I, P.value(L.wproj), H, x_out, &pool_);
  adapters_on({"proj"}, a.fc_act.data(), x_out, H);
  add_bias(x_out, M, H, P.value(L.bproj), &pool_);
  add_inplace(a.res1.data(), x_out, M * H, &pool_);
}

void TrainModel::layer_backward(int64_t l, const float* x_in, Acts& a, float* dres) {
  const ModelConfig& c = config_;
  const Layer& L = layers_[static_cast<size_t>(l)];
  const int64_t M = buf_->B * buf_->T, H = c.hidden_size, I = c.intermediate_size;
  const bool base = !has_lora();
  ParamSet& P = params_;
  float* sink = frozen_sink_.data();
  auto g = [&](size_t offset) { return base ? P.grad(offset) : sink; };
  auto t_of = [&](const LoraSlot& s) { return a.lora_t.data() + s.t_offset * M * lora_.rank; };
  auto adapters_back = [&](std::initializer_list<const char*> targets, const float* x, const float* dy, int64_t ldy,
                           float* dx) {
    for (const LoraSlot& s : L.lora)
      for (const char* t : targets)
        if (s.target == t) lora_backward(s, x, M, dy, ldy, t_of(s), dx);
  };
  float* dbig = buf_->dbig.data();
  float* dh = buf_->dh.data();

  // MLP: x_out = res1 + c_proj(act(c_fc(ln_2(res1))))
  if (base) {
    linear_backward_weight(dres, M, H, a.fc_act.data(), I, P.grad(L.wproj), &pool_);
    bias_backward(dres, M, H, P.grad(L.bproj), &pool_);
  }
  linear_backward_input(dres, M, H, P.value(L.wproj), I, dbig, false, &pool_);
  adapters_back({"proj"}, a.fc_act.data(), dres, H, dbig);
  act_backward(act_, a.fc.data(), dbig, dbig, M * I, &pool_);
  if (base) {
    linear_backward_weight(dbig, M, I, a.ln2.data(), H, P.grad(L.wfc), &pool_);
    bias_backward(dbig, M, I, P.grad(L.bfc), &pool_);
  }
  linear_backward_input(dbig, M, I, P.value(L.wfc), H, dh, false, &pool_);
  adapters_back({"fc"}, a.ln2.data(), dbig, I, dh);
  layer_norm_backward(dh, a.res1.data(), a.ln2_mean.data(), a.ln2_rstd.data(), P.value(L.ln2_g), M, H, dres,
                      g(L.ln2_g), g(L.ln2_b), &pool_);

  // attention: res1 = x_in + out_proj(attn(ln_1(x_in)))
  float* datt = buf_->datt.data();
  if (base) {
    linear_backward_weight(dres, M, H, a.atty.data(), H, P.grad(L.wo), &pool_);
    bias_backward(dres, M, H, P.grad(L.bo), &pool_);
  }
  linear_backward_input(dres, M, H, P.value(L.wo), H, datt, false, &pool_);
  adapters_back({"out"}, a.atty.data(), dres, H, datt);
  const AttentionShape shape{buf_->B, buf_->T, c.num_heads, c.head_dim(),
                             c.attention[static_cast<size_t>(l)] == AttentionKind::Local ? c.window_size : 0};
  float* dqkv = buf_->dqkv.data();
  attention_backward(shape, a.qkv.data(), a.probs.data(), datt, dqkv, &pool_);
  if (base) linear_backward_weight(dqkv, M, 3 * H, a.ln1.data(), H, P.grad(L.wqkv), &pool_);
  linear_backward_input(dqkv, M, 3 * H, P.value(L.wqkv), H, dh, false, &pool_);
  adapters_back({"q", "k", "v"}, a.ln1.data(), dqkv, 3 * H, dh);
  layer_norm_backward(dh, x_in, a.ln1_mean.data(), a.ln1_rstd.data(), P.value(L.ln1_g), M, H, dres, g(L.ln1_g),
                      g(L.ln1_b), &pool_);
}

// ---- the whole model -------------------------------------------------------------------------

double TrainModel::step(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T, float scale,
                        bool backward, bool recompute) {
  const ModelConfig& c = config_;
  for (int64_t i = 0; i < B * T; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw Error(fmt::format("token id {} is outside the model's vocabulary [0, {})", tokens[i], c.vocab_size));
    if (targets[i] >= c.vocab_size)
      throw Error(fmt::format("target id {} is outside the model's vocabulary [0, {})", targets[i], c.vocab_size));
  }
  ensure_acts(B, T, recompute);
  Buffers& b = *buf_;
  const int64_t M = B * T, H = c.hidden_size, L = c.num_layers;
  ParamSet& P = params_;
  auto acts_of = [&](int64_t l) -> Acts& { return b.acts[recompute ? 0 : static_cast<size_t>(l)]; };

  embedding_forward(tokens, B, T, H, P.value(wte_), P.value(wpe_), b.x[0].data());
  for (int64_t l = 0; l < L; ++l) layer_forward(l, b.x[l].data(), b.x[l + 1].data(), acts_of(l));
  layer_norm_forward(b.x[L].data(), M, H, P.value(lnf_g_), P.value(lnf_b_), c.layer_norm_epsilon, b.lnf.data(),
                     b.lnf_mean.data(), b.lnf_rstd.data(), &pool_);
  const bool base = !has_lora();
  float* dlnf = backward ? b.dh.data() : nullptr;
  const double loss = head_loss(b.lnf.data(), M, H, P.value(wte_), c.vocab_size, targets, scale, dlnf,
                                backward && base ? P.grad(wte_) : nullptr, logits_chunk_rows(), &pool_);
  if (!backward) return loss;

  float* dres = b.dres.data();
  std::fill(b.dres.begin(), b.dres.end(), 0.0f);
  float* sink = frozen_sink_.data();
  layer_norm_backward(dlnf, b.x[L].data(), b.lnf_mean.data(), b.lnf_rstd.data(), P.value(lnf_g_), M, H, dres,
                      base ? P.grad(lnf_g_) : sink, base ? P.grad(lnf_b_) : sink, &pool_);
  for (int64_t l = L - 1; l >= 0; --l) {
    // With recompute, the block's activations are rebuilt from its saved
    // input (the output written is bit-identical to the first pass).
    if (recompute) layer_forward(l, b.x[l].data(), b.x[l + 1].data(), acts_of(l));
    layer_backward(l, b.x[l].data(), acts_of(l), dres);
  }
  if (base) embedding_backward(tokens, B, T, H, dres, P.grad(wte_), P.grad(wpe_));
  return loss;
}

}  // namespace gptneo::training
