// How weight matrices are stored in memory for computation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gptneo {

enum class WeightFormat : uint8_t {
  F32,   // float32
  F16,   // IEEE half, widened to float32 in the kernels
  BF16,  // bfloat16, widened to float32 in the kernels
  Q8,    // 8-bit: blocks of 32 weights along a row, one f16 scale each (w = d·q)
  Q4,    // 4-bit: blocks of 32 weights, an f16 scale and minimum each (w = d·q + m)
};

std::string weight_format_name(WeightFormat f);
// Parses "f32", "f16", "bf16", "q8", "q4" (also "float32", "float16",
// "bfloat16", "int8", "int4").
std::optional<WeightFormat> weight_format_from_name(std::string_view name);
// True for the block-quantized formats (q8, q4).
inline bool is_quantized(WeightFormat f) { return f == WeightFormat::Q8 || f == WeightFormat::Q4; }

}  // namespace gptneo
