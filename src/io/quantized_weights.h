// Quantized model folders: what `gptneo quantize` writes and how its
// tensors are read back without conversion.
//
// The folder is a normal Hugging Face folder (config.json, tokenizer files,
// model.safetensors). Each quantized weight matrix keeps its usual tensor
// name but is stored as dtype U8 with shape [rows, blocks, block_bytes]: the
// bytes of kernels/quant_blocks.h, row after row, exactly as the kernels read
// them. The file's __metadata__ has "gptneo.weight_format": "q8" or "q4" and
// "gptneo.block_format": "q8_0" or "q4_1". Vectors (biases, LayerNorm) and
// the position embeddings keep their float type. Standard safetensors
// readers parse the file; only gptneo knows what the U8 tensors mean.
// See docs/performance.md.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "gptneo/weight_format.h"
#include "io/checkpoint.h"
#include "kernels/kernels.h"

namespace gptneo {

inline constexpr const char* kWeightFormatKey = "gptneo.weight_format";
inline constexpr const char* kBlockFormatKey = "gptneo.block_format";

// The quantized format of a checkpoint written by quantize_model, if any.
std::optional<WeightFormat> quantized_format(const Checkpoint& ck);
// The same for a model folder (nullopt for a float checkpoint).
std::optional<WeightFormat> stored_weight_format(const std::filesystem::path& dir);

// Whether tensor `name` of `ck` is stored quantized.
bool is_quantized_tensor(const Checkpoint& ck, const std::string& name);
// A [rows, cols] matrix over the stored bytes of quantized tensor `name`
// (no copy; it keeps the mapping alive). Throws gptneo::Error when the
// stored shape does not fit rows × cols.
Matrix quantized_matrix(const Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols);

struct QuantizeResult {
  size_t tensors = 0, quantized = 0;
  size_t bytes_in = 0, bytes_out = 0;
};
// Writes `out_dir` (created; must not exist or be empty) with the weights
// of the model folder `in_dir` in `format` (q8 or q4), and copies its other
// files (config.json, tokenizer...). `progress(done, total)` after each tensor.
QuantizeResult quantize_model(const std::filesystem::path& in_dir, const std::filesystem::path& out_dir,
                              WeightFormat format, ThreadPool& pool,
                              const std::function<void(size_t, size_t)>& progress = {});

}  // namespace gptneo
