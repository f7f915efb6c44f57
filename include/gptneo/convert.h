// Writing Hugging Face model folders: config.json, the tokenizer files and
// the weights as safetensors (one file, or shards with
// model.safetensors.index.json above a size limit), exactly the layout
// transformers' save_pretrained writes, so the result loads in gptneo and
// in transformers alike.
//
//   gptneo::SaveOptions o;
//   o.dtype = gptneo::WeightFormat::F16;
//   gptneo::convert_model("gpt-neo-1.3B", "gpt-neo-1.3B-f16", o);   // any folder gptneo reads
//
//   // or, from weights in memory (a training run's checkpoint):
//   gptneo::save_model("ckpt", config_json, {{"transformer.wte.weight", {{50257, 768}, wte.data()}}, ...},
//                      {.copy_files_from = "models/neo-mini"});
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gptneo/weight_format.h"

namespace gptneo {

struct SaveOptions {
  // Element type of the floating-point weights in the files; none: each
  // tensor keeps its own (float32 for save_model). Integer and bool tensors
  // are never converted.
  std::optional<WeightFormat> dtype;
  // Weights larger than this are split into shards
  // (model-00001-of-0000N.safetensors + model.safetensors.index.json);
  // 5 GB, as transformers' save_pretrained.
  uint64_t max_shard_bytes = 5'000'000'000;
  // The tokenizer and generation files found here (tokenizer.json,
  // vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json,
  // added_tokens.json, generation_config.json) are copied; empty: none.
  std::filesystem::path copy_files_from;
};

struct SaveResult {
  std::vector<std::string> files;    // written, relative to the folder
  int64_t tensors = 0;               // weights written
  uint64_t weight_bytes = 0;         // their bytes
  std::vector<std::string> dropped;  // convert_model: tensors left out, and why
};

// A float32 tensor in memory, row-major.
struct FloatTensor {
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

// Writes a model folder `dir` (created if needed) from weights in memory,
// named as transformers names them, and the text of config.json (its
// dtype field is updated to the written type). Every file is written under
// a temporary name and renamed, and weight files of an earlier save in a
// different layout (single file vs shards) are removed, so the folder can be
// saved over repeatedly. Throws gptneo::Error on any failure.
SaveResult save_model(const std::filesystem::path& dir, const std::string& config_json,
                      const std::map<std::string, FloatTensor>& tensors, const SaveOptions& options = {});

// Reads the model folder `from` (any format gptneo loads: safetensors,
// sharded or not, or pytorch_model.bin, sharded or not) and writes it to
// `to` as plain safetensors with its config and tokenizer files. Leaves out
// what transformers never loads: the attention-mask buffers old files carry
// (attn.attention.bias / masked_bias, attn.bias / masked_bias) and
// lm_head.weight when the head is tied to the token embedding. `to` must not
// exist or be empty. Tensors keep their names; with options.dtype the
// floating-point ones are rounded to it (round-to-nearest-even).
SaveResult convert_model(const std::filesystem::path& from, const std::filesystem::path& to,
                         const SaveOptions& options = {});

}  // namespace gptneo
