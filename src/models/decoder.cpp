#include "models/decoder.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "io/checkpoint.h"
#include "models/architecture.h"
#include "train/lora.h"

namespace gptneo {

namespace {

// Rows of logits computed at a time: large enough for efficient matrix
// products, small enough that scoring a long text never holds its logits.
constexpr int64_t kLogitsBlock = 64;

BatchLayout make_layout(std::span<const SequenceChunk> batch) {
  BatchLayout layout;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceChunk& c = batch[s];
    KVCacheImpl* cache = &c.cache->impl();
    const int64_t n = static_cast<int64_t>(c.tokens.size());
    layout.seqs.push_back({cache, layout.rows(), n, cache->length(), c.all_logits,
                           std::clamp<int64_t>(c.skip_logits, 0, n - 1)});
    for (int64_t i = 0; i < n; ++i) {
      layout.tokens.push_back(c.tokens[static_cast<size_t>(i)]);
      layout.positions.push_back(cache->length() + i);
      layout.row_seq.push_back(static_cast<int32_t>(s));
    }
  }
  return layout;
}

}  // namespace

// ---- Model ------------------------------------------------------------------------

KVCacheFormat default_kv_cache_format(WeightFormat weights) {
  return weights == WeightFormat::F32 ? KVCacheFormat::F32 : KVCacheFormat::F16;
}

std::string kv_cache_format_name(KVCacheFormat f) { return f == KVCacheFormat::F16 ? "f16" : "f32"; }

struct Model::Lock {
  std::mutex m;
};

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
  ModelConfig config = ModelConfig::load(dir);
  const Architecture* arch = find_architecture(config.model_type);
  Checkpoint ck = Checkpoint::open(dir);
  if (!options.lora_dir.empty()) training::apply_lora_to_checkpoint(ck, options.lora_dir);
  std::unique_ptr<Model> model = arch->load(std::move(config), ck, options);
  model->lock_ = std::make_shared<Lock>();
  model->kv_cache_format_ = options.kv_cache.value_or(default_kv_cache_format(model->weight_format()));
  return model;
}

std::unique_ptr<Model> Model::random(const ModelConfig& config, const LoadOptions& options, uint64_t seed) {
  const Architecture* arch = find_architecture(config.model_type);
  if (!arch) throw Error(fmt::format("unsupported model_type \"{}\"", config.model_type));
  // Every tensor is a view of one buffer of small uniform values, as large as
  // the largest matrix, starting at an offset of its own (Checkpoint::synthetic);
  // the model copies what it keeps.
  const int64_t longest = std::max({config.vocab_size, config.max_positions, config.intermediate_size, 4 * config.hidden_size});
  const auto count = static_cast<size_t>(longest * config.hidden_size);
  std::shared_ptr<float[]> values(new float[count]);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < count; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
    values[i] = (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) - 0.5f) * 0.1f;
  }
  const Checkpoint ck = Checkpoint::synthetic(values, count);
  std::unique_ptr<Model> model = arch->load(config, ck, options);
  model->lock_ = std::make_shared<Lock>();
  model->kv_cache_format_ = options.kv_cache.value_or(default_kv_cache_format(model->weight_format()));
  return model;
}

KVCache Model::new_cache(int64_t capacity) const {
  if (capacity <= 0) capacity = config_.max_positions;
  if (capacity > config_.max_positions)
    throw Error(fmt::format("a sequence of {} positions exceeds the model's maximum of {} "
                            "(max_position_embeddings)",
                            capacity, config_.max_positions));
  return KVCache(std::make_unique<KVCacheImpl>(config_, capacity, kv_cache_format_));
}

Logits Model::forward(std::span<const SequenceChunk> batch) {
  Logits out;
  out.vocab = config_.vocab_size;
  int64_t rows = 0;
  for (const auto& c : batch) {
    const auto n = static_cast<int64_t>(c.tokens.size());
    rows += c.all_logits ? n - std::clamp<int64_t>(c.skip_logits, 0, n - 1) : 1;
  }
  out.rows = rows;
  out.data.resize(static_cast<size_t>(rows * out.vocab));
  forward(batch, [&](int64_t first, int64_t n, const float* logits) {
    std::memcpy(out.row(first), logits, static_cast<size_t>(n * out.vocab) * sizeof(float));
  });
  return out;
}

void Model::forward(std::span<const SequenceChunk> batch, const LogitsSink& sink) {
  for (const auto& c : batch) {
    if (c.cache == nullptr || c.cache->capacity() == 0) throw Error("forward: a sequence has no KV cache");
    if (c.tokens.empty()) throw Error("forward: a sequence has no new tokens");
    const int64_t end = c.cache->length() + static_cast<int64_t>(c.tokens.size());
    if (end > config_.max_positions)
      throw Error(fmt::format("a sequence of {} tokens exceeds the model's maximum of {} positions "
                              "(max_position_embeddings)",
                              end, config_.max_positions));
    if (end > c.cache->capacity())
      throw Error(fmt::format("a sequence of {} tokens exceeds its KV cache capacity of {}", end,
                              c.cache->capacity()));
    for (const TokenId t : c.tokens)
      if (t < 0 || t >= config_.vocab_size)
        throw Error(fmt::format("token id {} is outside the model's vocabulary [0, {})", t, config_.vocab_size));
  }
  for (size_t i = 0; i < batch.size(); ++i)
    for (size_t j = i + 1; j < batch.size(); ++j)
      if (batch[i].cache == batch[j].cache) throw Error("forward: two sequences share one KV cache");
  std::lock_guard<std::mutex> guard(lock_->m);
  run(batch, sink);
}

size_t Model::weight_bytes() const { return weight_bytes_impl(); }

std::string Model::describe() const {
  int globals = 0;
  for (auto k : config_.attention) globals += k == AttentionKind::Global;
  return fmt::format("{}: {} layers ({} global, {} local, window {}), {} hidden, {} heads, vocab {}, "
                     "{} positions, {} weights ({:.1f} MB)",
                     config_.model_type, config_.num_layers, globals, config_.num_layers - globals,
                     config_.window_size, config_.hidden_size, config_.num_heads, config_.vocab_size,
                     config_.max_positions, weight_format_name(weight_format()), weight_bytes() / 1e6);
}

// ---- DecoderModel -------------------------------------------------------------

DecoderModel::DecoderModel(ModelConfig config, const LoadOptions& options)
    : Model(std::move(config)), pool_(options.threads) {}

size_t DecoderModel::weight_bytes_impl() const {
  size_t n = block_bytes() + lm_head_.bytes() + lm_head_bias_.size() * 4 + ln_f_.gamma.size() * 8;
  if (lm_head_.data != wte_.data) n += wte_.bytes();
  return n;
}

void DecoderModel::run(std::span<const SequenceChunk> batch, const LogitsSink& sink) {
  const BatchLayout layout = make_layout(batch);
  const int64_t hidden = config_.hidden_size;
  act_.x.resize(static_cast<size_t>(layout.rows() * hidden));
  embed(layout, act_.x.data());
  for (int64_t l = 0; l < config_.num_layers; ++l) block(l, layout, act_);
  for (const auto& seq : layout.seqs) seq.cache->advance(seq.rows);
  project_logits(layout, sink);
}

void DecoderModel::project_logits(const BatchLayout& layout, const LogitsSink& sink) {
  const int64_t hidden = config_.hidden_size, vocab = config_.vocab_size;
  // The rows that need logits, in output order.
  std::vector<int64_t> rows;
  for (const auto& seq : layout.seqs) {
    if (seq.all_logits)
      for (int64_t i = seq.skip_logits; i < seq.rows; ++i) rows.push_back(seq.first_row + i);
    else
      rows.push_back(seq.first_row + seq.rows - 1);
  }
  const int64_t total = static_cast<int64_t>(rows.size());
  for (int64_t first = 0; first < total; first += kLogitsBlock) {
    const int64_t n = std::min(kLogitsBlock, total - first);
    act_.head_in.resize(static_cast<size_t>(n * hidden));
    for (int64_t i = 0; i < n; ++i)
      ln_f_.apply(act_.x.data() + rows[first + i] * hidden, 1, act_.head_in.data() + i * hidden);
    act_.logits.resize(static_cast<size_t>(n * vocab));
    kernels::linear(act_.head_in.data(), n, lm_head_, lm_head_bias_.empty() ? nullptr : lm_head_bias_.data(),
                    act_.logits.data(), pool_);
    sink(first, n, act_.logits.data());
  }
}

}  // namespace gptneo
