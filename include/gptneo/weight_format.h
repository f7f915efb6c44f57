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
};

std::string weight_format_name(WeightFormat f);
// Parses "f32", "f16", "bf16" (also "float32", "float16", "bfloat16").
std::optional<WeightFormat> weight_format_from_name(std::string_view name);

}  // namespace gptneo
