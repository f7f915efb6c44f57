// gptneo train: train GPT-Neo from scratch or fine-tune it (fully or with
// LoRA), on one process or under mpirun. See docs/training.md.
#include <cstdio>

#include <fmt/format.h>

#include "cli/common.h"
#include "gptneo/error.h"
#include "gptneo/train.h"
#include "kernels/kernels.h"
#include "train/distributed.h"

namespace gptneo::cli {

void run_train_bench(const std::string& label, const std::string& config_json, int threads, const std::string& shape,
                     bool json) {
  TrainBenchOptions o;
  o.config = ModelConfig::parse(config_json, label);
  o.threads = threads;
  char x = 0;
  long long b = 0, t = 0;
  if (std::sscanf(shape.c_str(), "%lld%c%lld", &b, &x, &t) != 3 || (x != 'x' && x != 'X') || b <= 0 || t <= 0)
    throw Error(fmt::format("--train-shape \"{}\": expected BATCHxSEQ, e.g. 4x256", shape));
  o.batch = b, o.seq = t;
  const TrainBenchResult r = benchmark_training(o);
  const double peak_fraction = r.fma_peak_flops > 0 ? r.achieved_flops / r.fma_peak_flops : 0;
  if (json) {
    print_json({{"model", label},
                {"batch", o.batch},
                {"seq", o.seq},
                {"threads", threads},
                {"isa", kernels::isa_name()},
                {"parameters", r.parameters},
                {"step_s", r.step_s},
                {"forward_s", r.forward_s},
                {"tokens_per_s", r.tokens_per_s},
                {"flops_per_step", r.flops_per_step},
                {"achieved_flops_s", r.achieved_flops},
                {"f32_fma_peak_flops_s", r.fma_peak_flops},
                {"fraction_of_fma_peak", peak_fraction},
                {"activation_bytes", r.activation_bytes}});
    return;
  }
  fmt::print("train bench  {} (random weights, {:.1f} M parameters), batch {} x {} tokens, float32, {} threads ({})\n",
             label, r.parameters / 1e6, o.batch, o.seq, threads, kernels::isa_name());
  fmt::print("step         {:.3f} s (median of {}; forward + backward + AdamW): {:.1f} tokens/s\n", r.step_s, o.steps,
             r.tokens_per_s);
  fmt::print("forward      {:.3f} s (loss only)\n", r.forward_s);
  fmt::print("compute      {:.1f} GFLOP per step (6 x matrix weights x tokens + attention): {:.1f} GFLOP/s\n",
             r.flops_per_step / 1e9, r.achieved_flops / 1e9);
  if (r.fma_peak_flops > 0)
    fmt::print("machine      f32 FMA peak {:.1f} GFLOP/s (measured now): the step runs at {:.0f}% of it\n",
               r.fma_peak_flops / 1e9, 100 * peak_fraction);
  fmt::print("activations  {:.1f} MB kept for the backward pass\n", r.activation_bytes / 1e6);
}

void add_train_command(CLI::App& app) {
  struct Args {
    TrainOptions o;
    std::string init, config, tokenizer, out;
    std::vector<std::string> data, val_data;
    bool no_cache = false;
  };
  auto a = std::make_shared<Args>();
  TrainOptions& o = a->o;
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a GPT-Neo model from scratch (--config) or fine-tune one (--init), fully or with LoRA; "
               "run under mpirun for data-parallel training");
  // A repeated option takes its last value (handy for scripts that override
  // a base command line); --data and --val-data collect all values.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto* init = cmd->add_option("--init", a->init, "model folder to fine-tune");
  auto* config = cmd->add_option("--config", a->config, "Hugging Face GPT-Neo config.json to train from scratch");
  init->excludes(config);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer folder or file (default: the model / config folder)");
  cmd->add_option("--data", a->data, "training text files or folders (or token files)")
      ->required()
      ->expected(1, -1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--val-data", a->val_data, "validation text (default: the last --val-fraction of --data)")
      ->expected(1, -1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--val-fraction", o.val_fraction, "fraction of the data's rows held out for validation")
      ->default_val(0.05);
  cmd->add_flag("--no-token-cache", a->no_cache, "do not read or write PATH.gptneo-tokens beside the data");
  cmd->add_option("--out", a->out, "output folder: checkpoints step-N/, metrics.jsonl")->required();

  auto* steps = cmd->add_option("--steps", o.steps, "optimizer steps")->check(CLI::PositiveNumber);
  auto* tokens = cmd->add_option("--tokens", o.tokens, "train on this many tokens instead of --steps")
                     ->check(CLI::PositiveNumber);
  steps->excludes(tokens);
  cmd->add_option("--batch", o.batch, "rows per optimizer step (global: over all ranks and micro-steps)")
      ->check(CLI::PositiveNumber)
      ->default_val(8);
  cmd->add_option("--seq", o.seq, "tokens per row")->check(CLI::PositiveNumber)->default_val(256);
  cmd->add_option("--accum", o.accum, "gradient accumulation: micro-steps per optimizer step")
      ->check(CLI::PositiveNumber)
      ->default_val(1);
  cmd->add_option("--lr", o.lr, "peak learning rate")->default_val(3e-4);
  cmd->add_option("--min-lr", o.min_lr, "learning rate at the end of the decay (default: lr / 10)");
  cmd->add_option("--warmup", o.warmup, "steps of linear warm-up")->check(CLI::NonNegativeNumber)->default_val(0);
  cmd->add_option("--schedule", o.schedule, "decay after warm-up: cosine, linear or constant")->default_val("cosine");
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (2-D+ parameters only)")
      ->default_val(0.1);
  cmd->add_option("--grad-clip", o.grad_clip, "clip the global gradient norm to this (0: off)")->default_val(1.0);
  cmd->add_option("--beta1", o.beta1, "AdamW beta1")->default_val(0.9);
  cmd->add_option("--beta2", o.beta2, "AdamW beta2")->default_val(0.95);
  cmd->add_option("--eval-every", o.eval_every, "steps between validation passes (0: start and end only)")
      ->default_val(0);
  cmd->add_option("--eval-rows", o.eval_rows, "validation rows per evaluation")->default_val(64);
  cmd->add_option("--save-every", o.save_every, "steps between checkpoints (0: the last step only)")->default_val(0);
  cmd->add_option("--stop-after", o.stop_after, "end this run after N steps (the schedule still spans --steps)");
  cmd->add_option("--seed", o.seed, "seed of the data order and of new weights")->default_val(1234);
  cmd->add_option("-t,--threads", o.threads, "threads per process (default: physical cores / local ranks)");
  cmd->add_flag("--resume", o.resume, "continue from the newest checkpoint in --out");
  cmd->add_flag("--recompute", o.recompute, "recompute activations in the backward pass (less memory, ~1.3x time)");
  cmd->add_flag("--bf16", o.bf16, "round matrix-product operands to bfloat16 (float32 accumulation and weights)");
  cmd->add_option("--lora-rank", o.lora_rank, "train LoRA adapters of this rank only")->check(CLI::PositiveNumber);
  cmd->add_option("--lora-alpha", o.lora_alpha, "LoRA alpha (scaling alpha / rank; default: rank)");
  cmd->add_option("--lora-targets", o.lora_targets, "projections with adapters: q,k,v,out,fc,proj")
      ->default_val("q,v");
  cmd->callback([a] {
    TrainOptions& o = a->o;
    o.init_dir = a->init;
    o.config_path = a->config;
    o.tokenizer = a->tokenizer;
    o.out = a->out;
    o.data.assign(a->data.begin(), a->data.end());
    o.val_data.assign(a->val_data.begin(), a->val_data.end());
    o.cache_tokens = !a->no_cache;
    training::Comm& comm = training::Comm::world();
    try {
      train(o);
    } catch (const std::exception& e) {
      if (!comm.distributed()) throw;
      // The other ranks wait in an all-reduce: end them all.
      std::fprintf(stderr, "gptneo: error (rank %d): %s\n", comm.rank(), e.what());
      comm.abort(1);
    }
  });
}

}  // namespace gptneo::cli
