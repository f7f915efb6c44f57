// Weight matrices: storage, conversion between formats, row access.
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/dtype.h"
#include "gptneo/error.h"
#include "kernels/kernels.h"

namespace gptneo {

std::string weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "f32";
    case WeightFormat::F16: return "f16";
    case WeightFormat::BF16: return "bf16";
  }
  return "?";
}

std::optional<WeightFormat> weight_format_from_name(std::string_view name) {
  if (name == "f32" || name == "float32") return WeightFormat::F32;
  if (name == "f16" || name == "float16") return WeightFormat::F16;
  if (name == "bf16" || name == "bfloat16") return WeightFormat::BF16;
  return std::nullopt;
}

size_t Matrix::bytes() const {
  const size_t n = static_cast<size_t>(rows * cols);
  return format == WeightFormat::F32 ? n * 4 : n * 2;
}

void Matrix::row_f32(int64_t r, float* out) const {
  const size_t off = static_cast<size_t>(r * cols);
  switch (format) {
    case WeightFormat::F32:
      std::memcpy(out, f32() + off, static_cast<size_t>(cols) * 4);
      return;
    case WeightFormat::F16:
      convert_to_f32(DType::F16, static_cast<const uint16_t*>(data) + off, static_cast<size_t>(cols), out);
      return;
    case WeightFormat::BF16:
      convert_to_f32(DType::BF16, static_cast<const uint16_t*>(data) + off, static_cast<size_t>(cols), out);
      return;
  }
}

Matrix make_f32_matrix(int64_t rows, int64_t cols) {
  auto buf = std::shared_ptr<float[]>(new float[static_cast<size_t>(rows * cols)]);
  Matrix m;
  m.format = WeightFormat::F32;
  m.rows = rows;
  m.cols = cols;
  m.data = buf.get();
  m.storage = std::shared_ptr<const void>(buf, buf.get());
  return m;
}

Matrix convert_matrix(const Matrix& m, WeightFormat format) {
  if (m.format != WeightFormat::F32) throw Error("convert_matrix: the source must be float32");
  if (format == WeightFormat::F32) return m;
  const size_t n = static_cast<size_t>(m.rows * m.cols);
  auto buf = std::shared_ptr<uint16_t[]>(new uint16_t[n]);
  const float* src = m.f32();
  for (size_t i = 0; i < n; ++i) buf[i] = format == WeightFormat::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
  Matrix out;
  out.format = format;
  out.rows = m.rows;
  out.cols = m.cols;
  out.data = buf.get();
  out.storage = std::shared_ptr<const void>(buf, buf.get());
  return out;
}

}  // namespace gptneo
