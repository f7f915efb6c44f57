// Checkpoints of a training run: OUT/step-N/ holds the model as a Hugging
// Face folder (or the LoRA adapters in PEFT's layout), plus
//   optimizer.safetensors   AdamW's exp_avg and exp_avg_sq (flat float32)
//   trainer_state.json      step, data position, tokens seen, last losses
// Each is written into OUT/.step-N.tmp and renamed into place when complete,
// so a crash mid-save leaves the previous checkpoint untouched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "train/model.h"
#include "train/optimizer.h"

namespace gptneo::training {

struct RunState {
  int64_t step = 0;  // optimizer steps done
  int64_t tokens_seen = 0;
  int64_t data_epoch = 0, data_index = 0;
  double loss = 0, val_loss = -1;
  double elapsed_s = 0;  // training time of all runs so far
  nlohmann::json to_json() const;
  static RunState from_json(const nlohmann::json& j, const std::string& where);
};

struct SaveSpec {
  std::string config_json;                  // the model's config.json text
  std::filesystem::path copy_files_from;    // tokenizer / generation files
  std::string base_model;                   // named in adapter_config.json (LoRA)
};

// Writes OUT/step-N for state.step; returns its path.
std::filesystem::path save_checkpoint(const std::filesystem::path& out, const TrainModel& model, const AdamW& opt,
                                      const RunState& state, const SaveSpec& spec);
// The newest complete OUT/step-N, if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& out);
// Loads weights (or adapters), optimizer state and run state from a
// checkpoint folder written by save_checkpoint.
RunState load_checkpoint(const std::filesystem::path& dir, TrainModel& model, AdamW& opt);

}  // namespace gptneo::training
