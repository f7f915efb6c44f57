// A loaded language model: configuration, weights, and the forward pass.
//
//   auto model = gptneo::Model::load("models/neo-mini");
//   gptneo::KVCache cache = model->new_cache(64);
//   std::vector<gptneo::TokenId> prompt = {464, 3644};
//   gptneo::SequenceChunk chunk{&cache, prompt};
//   gptneo::Logits out = model->forward({&chunk, 1});   // logits of the last token
//
// The architecture is chosen from config.json's `model_type`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gptneo/tokenizer.h"
#include "gptneo/weight_format.h"

namespace gptneo {

// Which keys a layer's queries may attend to.
enum class AttentionKind {
  Global,  // every earlier position
  Local,   // the last window_size positions (itself included)
};

// The architecture-independent description of a model, read from config.json.
struct ModelConfig {
  std::string model_type;  // "gpt_neo", ...
  int64_t vocab_size = 0;
  int64_t max_positions = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  float layer_norm_epsilon = 1e-5f;
  std::string activation = "gelu_new";
  std::vector<AttentionKind> attention;  // one per layer
  int64_t window_size = 0;               // for Local layers
  int64_t rotary_dim = 0;                // 0: no rotary embedding
  int32_t bos_token_id = -1;
  int32_t eos_token_id = -1;
  std::string json;  // config.json as read, kept for writing checkpoints

  int64_t head_dim() const { return hidden_size / num_heads; }
  // Reads and validates `dir`/config.json; throws gptneo::Error naming the
  // missing or invalid field, or the unsupported model_type.
  static ModelConfig load(const std::filesystem::path& dir);
  // The same from the text of a config.json (`where` names it in errors).
  static ModelConfig parse(const std::string& json_text, const std::string& where);
};

// How KV caches keep keys and values: float32 (exactly as the reference
// computes them), or IEEE half: half the memory per sequence and half the
// bytes attention reads per token, each key and value rounded to 11
// significant bits (beyond ±65504, to ±65504; sums stay float32).
enum class KVCacheFormat { F32, F16 };

// The caches' format unless LoadOptions::kv_cache names one: float32 with
// float32 weights, so that results are the reference's; f16 with 16-bit or
// quantized weights, whose own rounding is far coarser (the reference keeps
// a 16-bit model's caches in its 16-bit format; llama.cpp keeps f16 caches
// by default).
KVCacheFormat default_kv_cache_format(WeightFormat weights);
// "f32" or "f16".
std::string kv_cache_format_name(KVCacheFormat f);

struct LoadOptions {
  int threads = 0;                           // 0: one per physical core
  WeightFormat weights = WeightFormat::F32;  // format of the matrices in memory
  // Format of the caches new_cache makes; unset: default_kv_cache_format of
  // the weights' format in memory.
  std::optional<KVCacheFormat> kv_cache;
  // LoRA adapters (PEFT layout: adapter_config.json + adapter_model.safetensors)
  // merged into the weights at load, W + (alpha / r)·B·A; empty: none.
  std::filesystem::path lora_dir;
};

class KVCacheImpl;

// The keys and values of one sequence, so that each new token costs one
// step instead of a pass over the whole sequence. Global layers keep every
// position; local layers keep only the last window_size ones (a ring buffer).
// Made by Model::new_cache; movable, copyable (copy() duplicates the state).
class KVCache {
 public:
  KVCache();
  KVCache(KVCache&&) noexcept;
  KVCache& operator=(KVCache&&) noexcept;
  ~KVCache();

  int64_t length() const;    // positions filled so far
  int64_t capacity() const;  // most positions this cache can hold
  size_t bytes() const;      // memory held
  // Forgets everything after the first n positions. Throws when a local
  // layer's ring no longer holds the positions that would be needed.
  void truncate(int64_t n);
  void clear() { truncate(0); }
  KVCache copy() const;

  KVCacheImpl& impl() { return *impl_; }
  const KVCacheImpl& impl() const { return *impl_; }
  explicit KVCache(std::unique_ptr<KVCacheImpl> impl);

 private:
  std::unique_ptr<KVCacheImpl> impl_;
};

// New tokens of one sequence to run through the model. Their positions
// continue from cache->length(); the cache is extended by them.
struct SequenceChunk {
  KVCache* cache = nullptr;
  std::span<const TokenId> tokens;
  bool all_logits = false;  // logits for every new token (else the last only)
  int64_t skip_logits = 0;  // with all_logits: none for the first skip_logits tokens
};

// Logits rows, [rows × vocab], row-major: for each chunk in order, one row
// per token (all_logits, less the skipped ones) or one row for its last token.
struct Logits {
  int64_t rows = 0;
  int64_t vocab = 0;
  std::vector<float> data;
  const float* row(int64_t r) const { return data.data() + r * vocab; }
  float* row(int64_t r) { return data.data() + r * vocab; }
};

// Receives logits in blocks of rows (row index of the first, count, data),
// so that scoring long texts never holds all logits at once.
using LogitsSink = std::function<void(int64_t first_row, int64_t rows, const float* logits)>;

class Model {
 public:
  // Loads config.json and the weights from a Hugging Face model folder.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, const LoadOptions& options = {});
  // A model of `config`'s architecture and shapes with random weights and no
  // files (for benchmarks at the released shapes). Its outputs are noise.
  static std::unique_ptr<Model> random(const ModelConfig& config, const LoadOptions& options = {}, uint64_t seed = 1);
  virtual ~Model();

  const ModelConfig& config() const { return config_; }
  // A cache for a sequence of up to `capacity` positions (at most
  // max_positions; 0 means max_positions).
  KVCache new_cache(int64_t capacity = 0) const;
  KVCacheFormat kv_cache_format() const { return kv_cache_format_; }

  // Runs a batch of sequences' new tokens. Not re-entrant: concurrent calls
  // are serialised.
  Logits forward(std::span<const SequenceChunk> batch);
  void forward(std::span<const SequenceChunk> batch, const LogitsSink& sink);

  // Bytes of weights held in memory, and of weights read per decoded token.
  size_t weight_bytes() const;
  // One line: architecture, sizes, weight format.
  std::string describe() const;
  // The format of the weight matrices in memory.
  virtual WeightFormat weight_format() const = 0;

 protected:
  explicit Model(ModelConfig config) : config_(std::move(config)) {}
  virtual void run(std::span<const SequenceChunk> batch, const LogitsSink& sink) = 0;
  virtual size_t weight_bytes_impl() const = 0;

  ModelConfig config_;
  KVCacheFormat kv_cache_format_ = KVCacheFormat::F32;

 private:
  struct Lock;
  std::shared_ptr<Lock> lock_;
};

}  // namespace gptneo
