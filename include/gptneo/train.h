// Training and fine-tuning GPT-Neo models: from scratch (a Hugging Face
// config.json) or from a model folder, fully or with LoRA adapters, on one
// process or many (MPI data parallel: run the same command under mpirun).
//
//   gptneo::TrainOptions o;
//   o.init_dir = "models/neo-mini";
//   o.data = {"bible.txt"};
//   o.out = "runs/bible";
//   o.steps = 200;
//   gptneo::TrainResult r = gptneo::train(o);   // runs/bible/step-200/ loads in gptneo and transformers
//
// Every checkpoint OUT/step-N/ is a Hugging Face folder (config.json,
// model.safetensors, tokenizer files; adapter_config.json +
// adapter_model.safetensors with LoRA) with trainer_state.json and
// optimizer.safetensors beside the weights, from which --resume continues
// bit for bit. Metrics go to OUT/metrics.jsonl, one JSON object per line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gptneo/convert.h"
#include "gptneo/model.h"

namespace gptneo {

struct TrainOptions {
  // The starting point: a model folder to fine-tune, or a config.json to
  // train from random weights (exactly one of the two).
  std::filesystem::path init_dir;
  std::filesystem::path config_path;
  // Tokenizer files (a folder or file); default: the model / config folder.
  std::filesystem::path tokenizer;

  std::vector<std::filesystem::path> data;      // text files, folders, or token files
  std::vector<std::filesystem::path> val_data;  // default: the tail of `data`
  double val_fraction = 0.05;                   // of the rows of `data`, when val_data is empty
  bool cache_tokens = true;                     // PATH.gptneo-tokens beside the data
  std::filesystem::path out;

  int64_t steps = 0;   // optimizer steps; or
  int64_t tokens = 0;  // tokens to train on (steps = tokens / (batch × seq), rounded up)
  int64_t batch = 8;   // rows per optimizer step (the global batch, over all ranks and micro-steps)
  int64_t seq = 256;   // tokens per row
  int64_t accum = 1;   // micro-steps per optimizer step (gradient accumulation)
  int64_t stop_after = 0;  // > 0: end this run after so many steps (the schedule still spans all)

  double lr = 3e-4;
  double min_lr = -1;  // floor of the decay; < 0: lr / 10
  int64_t warmup = 0;
  std::string schedule = "cosine";  // cosine, linear or constant
  double weight_decay = 0.1;        // on parameters of 2+ dimensions
  double grad_clip = 1.0;           // global norm; 0: none
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;

  int64_t eval_every = 0;  // steps between validation passes (0: at the start and end only)
  int64_t eval_rows = 64;  // validation rows evaluated each time (at most all)
  int64_t save_every = 0;  // steps between checkpoints (0: the last step only)
  uint64_t seed = 1234;
  int threads = 0;         // per process; 0: one per physical core
  bool resume = false;     // continue from the newest OUT/step-N
  bool recompute = false;  // recompute activations in the backward pass (less memory)
  bool bf16 = false;       // bf16 matrix-product operands, float32 accumulation and master weights

  int64_t lora_rank = 0;  // > 0: train LoRA adapters only
  double lora_alpha = 0;  // 0: = rank
  std::string lora_targets = "q,v";

  // Called after every step on rank 0 with the metrics line (also written
  // to metrics.jsonl); for progress display.
  std::function<void(const std::string& json_line)> on_metrics;
};

struct TrainResult {
  int64_t steps = 0;        // the last step done
  double loss = 0;          // training loss of the last step
  double val_loss = -1;     // last validation loss (-1: none)
  double seconds = 0;       // wall time of the steps run in this call
  double tokens_per_s = 0;  // training tokens per second (all ranks)
  std::filesystem::path checkpoint;  // the last checkpoint written
};

// Trains as described by `options`; throws gptneo::Error on bad options or
// data. Under mpirun every rank must call it with the same options.
TrainResult train(const TrainOptions& options);

// The speed of one training step at a model's shapes (random weights).
struct TrainBenchOptions {
  ModelConfig config;
  int64_t batch = 4, seq = 256;
  int64_t steps = 3;  // timed steps, after one warm-up step
  int threads = 2;
  bool recompute = false;
  bool measure_peak = true;  // also measure the machine's FMA peak
};
struct TrainBenchResult {
  double step_s = 0;          // median
  double tokens_per_s = 0;
  double flops_per_step = 0;  // matrix-product FLOPs: 6 × weights × tokens + attention
  double achieved_flops = 0;
  double fma_peak_flops = 0;  // measured (0 when not asked)
  double forward_s = 0;       // forward only (loss, no gradients), median
  size_t activation_bytes = 0;
  int64_t parameters = 0;
};
TrainBenchResult benchmark_training(const TrainBenchOptions& options);

// Writes `model_dir` with the LoRA adapters of `lora_dir` (PEFT layout:
// adapter_config.json + adapter_model.safetensors) folded into its weights,
// W + (alpha / r) · B · A, as a new model folder `out_dir`. With
// options.dtype unset the weights keep the base model's float type.
SaveResult merge_lora(const std::filesystem::path& model_dir, const std::filesystem::path& lora_dir,
                      const std::filesystem::path& out_dir, const SaveOptions& options = {});

}  // namespace gptneo
