// gptneo::merge_lora (include/gptneo/train.h): a model folder with LoRA
// adapters folded in, written as a plain Hugging Face folder.
#include <fmt/format.h>

#include "core/dtype.h"
#include "gptneo/error.h"
#include "gptneo/train.h"
#include "io/checkpoint.h"
#include "train/lora.h"

namespace gptneo {

namespace fs = std::filesystem;

SaveResult merge_lora(const fs::path& model_dir, const fs::path& lora_dir, const fs::path& out_dir,
                      const SaveOptions& options) {
  const ModelConfig config = ModelConfig::load(model_dir);
  if (fs::exists(out_dir) && (!fs::is_directory(out_dir) || !fs::is_empty(out_dir)))
    throw Error(fmt::format("the output folder {} already exists and is not empty", out_dir.string()));
  Checkpoint ck = Checkpoint::open(model_dir);
  // The type to write back: the base model's (the merged tensors are float32 in memory).
  std::optional<WeightFormat> stored;
  for (const auto& [name, t] : ck.tensors()) {
    if (!dtype_is_float(t.dtype)) continue;
    stored = t.dtype == DType::F16 ? WeightFormat::F16 : t.dtype == DType::BF16 ? WeightFormat::BF16 : WeightFormat::F32;
    break;
  }
  training::apply_lora_to_checkpoint(ck, lora_dir);

  const bool has_wte = ck.has("transformer.wte.weight") || ck.has("wte.weight");
  std::vector<std::vector<float>> storage;
  storage.reserve(ck.tensors().size());
  std::map<std::string, FloatTensor> tensors;
  for (const auto& [name, t] : ck.tensors()) {
    // What transformers does not load: mask buffers, and the tied head.
    if (!dtype_is_float(t.dtype) || name.ends_with("attn.attention.bias") || name.ends_with("masked_bias") ||
        (name == "lm_head.weight" && has_wte))
      continue;
    storage.emplace_back(static_cast<size_t>(t.numel()));
    convert_to_f32(t.dtype, t.data, storage.back().size(), storage.back().data());
    tensors[name] = FloatTensor{t.shape, storage.back().data()};
  }
  SaveOptions o = options;
  if (!o.dtype) o.dtype = stored;
  if (o.copy_files_from.empty()) o.copy_files_from = model_dir;
  return save_model(out_dir, config.json, tensors, o);
}

}  // namespace gptneo
