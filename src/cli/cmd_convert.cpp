// gptneo convert: any model folder gptneo reads -> a plain Hugging Face
// safetensors folder (e.g. a released pytorch_model.bin checkpoint).
#include <cctype>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "cli/common.h"
#include "gptneo/convert.h"
#include "gptneo/error.h"
#include "gptneo/train.h"

namespace gptneo::cli {

namespace {

// "5GB", "500MB", "2GiB", "1000000" -> bytes (decimal units as transformers'
// max_shard_size, binary ones with an i).
uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit;
  for (char c : text.substr(used)) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},     {"B", 1},        {"KB", 1e3},           {"MB", 1e6},          {"GB", 1e9},
      {"TB", 1e12}, {"KIB", 1024.0}, {"MIB", 1024.0 * 1024}, {"GIB", 1024.0 * 1024 * 1024}};
  for (const auto& [name, scale] : kUnits)
    if (used > 0 && unit == name && value > 0 && std::isfinite(value)) return static_cast<uint64_t>(value * scale);
  throw Error(fmt::format("\"{}\" is not a size (e.g. 5GB, 500MB, 2GiB)", text));
}

}  // namespace

void add_convert_command(CLI::App& app) {
  struct Args {
    std::string model_dir, out_dir, dtype, max_shard = "5GB";
    std::string merge_lora;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Write a model folder (safetensors or pytorch_model.bin, sharded or not) as a plain Hugging Face "
                 "safetensors folder");
  cmd->add_option("-m,--model", args->model_dir, "the model folder to read")->required();
  cmd->add_option("-o,--output", args->out_dir, "the folder to write (must not exist or be empty)")->required();
  cmd->add_option("--dtype", args->dtype, "element type of the written weights: f32, f16 or bf16 (default: as stored)");
  cmd->add_option("--max-shard-size", args->max_shard, "split the weights into shards above this size")
      ->default_val("5GB");
  cmd->add_option("--merge-lora", args->merge_lora, "fold the LoRA adapters of this folder (PEFT layout) into the weights");
  cmd->callback([args] {
    SaveOptions options;
    if (!args->dtype.empty()) {
      options.dtype = weight_format_from_name(args->dtype);
      const bool plain_float = options.dtype && (*options.dtype == WeightFormat::F32 ||
                                                 *options.dtype == WeightFormat::F16 ||
                                                 *options.dtype == WeightFormat::BF16);
      if (!plain_float) throw Error(fmt::format("unknown --dtype \"{}\" (expected f32, f16 or bf16)", args->dtype));
    }
    options.max_shard_bytes = parse_size(args->max_shard);
    const SaveResult r = args->merge_lora.empty() ? convert_model(args->model_dir, args->out_dir, options)
                                                  : merge_lora(args->model_dir, args->merge_lora, args->out_dir, options);
    // One line per reason: a 6B model has 56 mask buffers.
    std::map<std::string, std::vector<std::string>> by_reason;
    for (const auto& d : r.dropped) {
      const size_t paren = d.find(" (");
      by_reason[paren == std::string::npos ? "" : d.substr(paren + 2, d.size() - paren - 3)].push_back(d.substr(0, paren));
    }
    for (const auto& [reason, names] : by_reason)
      fmt::print(stderr, "left out {} ({}): {}\n", names.size() == 1 ? names[0] : fmt::format("{} tensors", names.size()),
                 reason, names.size() == 1 ? "transformers does not load it" : "e.g. " + names[0]);
    fmt::print("wrote {}: {} tensors, {:.1f} MB of weights in {} file(s)\n", args->out_dir, r.tensors,
               r.weight_bytes / 1e6, r.files.size());
  });
}

}  // namespace gptneo::cli
