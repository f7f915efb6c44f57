// Weight matrices: storage, conversion between formats, row access.
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/dtype.h"
#include "core/stream_memory.h"
#include "gptneo/error.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"

namespace gptneo {

std::string weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "f32";
    case WeightFormat::F16: return "f16";
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::Q8: return "q8";
    case WeightFormat::Q4: return "q4";
  }
  return "?";
}

std::optional<WeightFormat> weight_format_from_name(std::string_view name) {
  if (name == "f32" || name == "float32") return WeightFormat::F32;
  if (name == "f16" || name == "float16") return WeightFormat::F16;
  if (name == "bf16" || name == "bfloat16") return WeightFormat::BF16;
  if (name == "q8" || name == "int8") return WeightFormat::Q8;
  if (name == "q4" || name == "int4") return WeightFormat::Q4;
  return std::nullopt;
}

size_t Matrix::row_bytes() const { return quant::row_bytes(format, cols); }

void Matrix::row_f32(int64_t r, float* out) const {
  const uint8_t* p = row(r);
  const auto n = static_cast<size_t>(cols);
  switch (format) {
    case WeightFormat::F32: std::memcpy(out, p, n * 4); return;
    case WeightFormat::F16: convert_to_f32(DType::F16, p, n, out); return;
    case WeightFormat::BF16: convert_to_f32(DType::BF16, p, n, out); return;
    case WeightFormat::Q8:
    case WeightFormat::Q4: break;
  }
  // Quantized rows in their own layout are dequantized from Blocks.
  thread_local std::vector<uint8_t> blocks;
  if (layout != quant::Layout::Blocks) {
    blocks.resize(row_bytes());
    quant::relayout_row(format, cols, layout, p, quant::Layout::Blocks, blocks.data());
    p = blocks.data();
  }
  switch (format) {
    case WeightFormat::Q8: quant::dequantize_row_q8(reinterpret_cast<const quant::BlockQ8*>(p), cols, out); return;
    case WeightFormat::Q4: quant::dequantize_row_q4(reinterpret_cast<const quant::BlockQ4*>(p), cols, out); return;
    default: return;
  }
}

Matrix make_f32_matrix(int64_t rows, int64_t cols) {
  const std::shared_ptr<void> buf = allocate_stream_memory(static_cast<size_t>(rows * cols) * sizeof(float));
  Matrix m;
  m.format = WeightFormat::F32;
  m.rows = rows;
  m.cols = cols;
  m.data = buf.get();
  m.storage = buf;
  return m;
}

namespace {

// Row r of `m` in `to`, written at `out` (row_bytes(to, cols) bytes); `tmp`
// holds cols floats.
void convert_row(const Matrix& m, int64_t r, WeightFormat to, uint8_t* out, float* tmp) {
  const float* src = tmp;
  if (m.format == WeightFormat::F32)
    src = reinterpret_cast<const float*>(m.row(r));
  else
    m.row_f32(r, tmp);
  const auto n = static_cast<size_t>(m.cols);
  switch (to) {
    case WeightFormat::F32: std::memcpy(out, src, n * 4); return;
    case WeightFormat::F16:
    case WeightFormat::BF16: {
      auto* o = reinterpret_cast<uint16_t*>(out);
      for (size_t i = 0; i < n; ++i) o[i] = to == WeightFormat::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
      return;
    }
    case WeightFormat::Q8: quant::quantize_row_q8(src, m.cols, reinterpret_cast<quant::BlockQ8*>(out)); return;
    case WeightFormat::Q4: quant::quantize_row_q4(src, m.cols, reinterpret_cast<quant::BlockQ4*>(out)); return;
  }
}

}  // namespace

Matrix convert_matrix(const Matrix& m, WeightFormat format, ThreadPool* pool) {
  if (m.format == format) return m;
  const size_t row_bytes = quant::row_bytes(format, m.cols);
  const std::shared_ptr<void> buf = allocate_stream_memory(row_bytes * static_cast<size_t>(m.rows));
  auto* dst = static_cast<uint8_t*>(buf.get());
  auto convert_rows = [&](int64_t r0, int64_t r1) {
    std::vector<float> tmp(static_cast<size_t>(m.cols));
    for (int64_t r = r0; r < r1; ++r) convert_row(m, r, format, dst + row_bytes * static_cast<size_t>(r), tmp.data());
  };
  if (pool)
    pool->parallel_for(m.rows, 64, convert_rows);
  else
    convert_rows(0, m.rows);
  Matrix out;
  out.format = format;
  out.rows = m.rows;
  out.cols = m.cols;
  out.data = buf.get();
  out.storage = buf;
  return out;
}

Matrix with_layout(const Matrix& m, quant::Layout layout, ThreadPool* pool) {
  if (!is_quantized(m.format) || m.layout == layout) return m;
  const size_t row_bytes = m.row_bytes();
  const std::shared_ptr<void> buf = allocate_stream_memory(row_bytes * static_cast<size_t>(m.rows));
  auto* dst = static_cast<uint8_t*>(buf.get());
  auto relayout_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      quant::relayout_row(m.format, m.cols, m.layout, m.row(r), layout, dst + row_bytes * static_cast<size_t>(r));
  };
  if (pool)
    pool->parallel_for(m.rows, 64, relayout_rows);
  else
    relayout_rows(0, m.rows);
  Matrix out = m;
  out.data = buf.get();
  out.storage = buf;
  out.layout = layout;
  return out;
}

}  // namespace gptneo
