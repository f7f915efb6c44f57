// LoRA adapters in PEFT's file layout:
//   adapter_config.json        {"peft_type": "LORA", "r": 8, "lora_alpha": 8, "target_modules": [...], ...}
//   adapter_model.safetensors  base_model.model.transformer.h.0.attn.attention.q_proj.lora_A.weight [r, in]
//                              base_model.model.transformer.h.0.attn.attention.q_proj.lora_B.weight [out, r]
// so that peft.PeftModel.from_pretrained loads what gptneo trains, and gptneo
// applies adapters trained by PEFT.
#pragma once

#include <filesystem>
#include <string>

#include "train/model.h"

namespace gptneo {
class Checkpoint;
}

namespace gptneo::training {

// Writes adapter_config.json + adapter_model.safetensors of `m` into `dir`.
void save_lora_adapters(const std::filesystem::path& dir, const TrainModel& m, const std::string& base_model);
// The rank, alpha and targets of the adapters in `dir`.
LoraSpec read_lora_spec(const std::filesystem::path& dir);
// Reads the adapters of `dir` into `m` (which has add_lora() with the same spec).
void load_lora_adapters(const std::filesystem::path& dir, TrainModel& m);

// Replaces every adapted weight W of `ck` by W + scale · B · A (float32).
// Throws naming the adapter file and tensor on a mismatch.
void apply_lora_to_checkpoint(Checkpoint& ck, const std::filesystem::path& lora_dir);

}  // namespace gptneo::training
