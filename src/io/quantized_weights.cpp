#include "io/quantized_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "io/safetensors.h"
#include "kernels/quant_blocks.h"

namespace gptneo {

namespace fs = std::filesystem;

namespace {

const char* block_format_name(WeightFormat f) { return f == WeightFormat::Q8 ? "q8_0" : "q4_1"; }

// Tensors that stay in their float type: vectors, and the position
// embeddings (read as float32 rows, small, and sensitive to rounding).
bool should_quantize(const TensorView& t) {
  if (t.shape.size() != 2 || !dtype_is_float(t.dtype)) return false;
  const std::string& n = t.name;
  return !(n.size() >= 10 && n.compare(n.size() - 10, 10, "wpe.weight") == 0);
}

// Write order: sorted by name, except that each attention's k and v
// projections follow its q projection, so that the three lie back to back
// and load as one stacked matrix without a copy.
std::vector<std::string> write_order(const Checkpoint& ck) {
  std::vector<std::string> names;
  for (const auto& [name, v] : ck.tensors()) names.push_back(name);
  std::vector<std::string> order;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& n : names) {
    if (ends_with(n, "k_proj.weight") || ends_with(n, "v_proj.weight")) {
      const std::string q = n.substr(0, n.size() - 13) + "q_proj.weight";
      if (ck.has(q)) continue;  // written after q
    }
    order.push_back(n);
    if (ends_with(n, "q_proj.weight")) {
      const std::string base = n.substr(0, n.size() - 13);
      for (const char* part : {"k_proj.weight", "v_proj.weight"})
        if (ck.has(base + part)) order.push_back(base + part);
    }
  }
  return order;
}

}  // namespace

std::optional<WeightFormat> quantized_format(const Checkpoint& ck) {
  const auto it = ck.metadata().find(kWeightFormatKey);
  if (it == ck.metadata().end()) return std::nullopt;
  const auto f = weight_format_from_name(it->second);
  if (!f || !is_quantized(*f))
    throw Error(fmt::format("{}: unknown {} \"{}\" in the safetensors metadata (expected q8 or q4)",
                            ck.dir().string(), kWeightFormatKey, it->second));
  return f;
}

std::optional<WeightFormat> stored_weight_format(const fs::path& dir) {
  return quantized_format(Checkpoint::open(dir));
}

bool is_quantized_tensor(const Checkpoint& ck, const std::string& name) {
  if (!ck.tensors().count(name)) return false;
  const TensorView& t = ck.get(name);
  return t.dtype == DType::U8 && t.shape.size() == 3 && quantized_format(ck).has_value();
}

Matrix quantized_matrix(const Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols) {
  const WeightFormat f = *quantized_format(ck);
  const TensorView& t = ck.get(name);
  const std::vector<int64_t> want = {rows, quant::blocks_per_row(cols), static_cast<int64_t>(quant::block_bytes(f))};
  if (t.shape != want) {
    TensorView expected;
    expected.shape = want;
    throw Error(fmt::format("quantized tensor '{}' in {} has shape {}, expected {} ({} × {} weights in {} blocks)",
                            name, t.source, t.shape_string(), expected.shape_string(), rows, cols,
                            block_format_name(f)));
  }
  if (reinterpret_cast<uintptr_t>(t.data) % alignof(quant::BlockQ8) != 0)
    throw Error(fmt::format("quantized tensor '{}' in {} starts at an odd offset", name, t.source));
  Matrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.data = t.data;
  m.storage = t.keep_alive;
  return m;
}

QuantizeResult quantize_model(const fs::path& in_dir, const fs::path& out_dir, WeightFormat format, ThreadPool& pool,
                              const std::function<void(size_t, size_t)>& progress) {
  if (!is_quantized(format))
    throw Error(fmt::format("quantize: --dtype must be q8 or q4, not {}", weight_format_name(format)));
  const Checkpoint ck = Checkpoint::open(in_dir);
  if (quantized_format(ck)) throw Error(fmt::format("{} is already quantized", in_dir.string()));
  if (fs::exists(out_dir) && !(fs::is_directory(out_dir) && fs::is_empty(out_dir)))
    throw Error(fmt::format("output folder {} exists and is not empty", out_dir.string()));
  fs::create_directories(out_dir);

  QuantizeResult result;
  std::vector<std::vector<uint64_t>> buffers;  // the converted bytes, alive until written
  std::vector<TensorToWrite> out;
  const std::vector<std::string> order = write_order(ck);
  for (const auto& name : order) {
    const TensorView& t = ck.get(name);
    result.bytes_in += t.nbytes;
    ++result.tensors;
    if (!should_quantize(t)) {
      out.push_back({name, t.dtype, t.shape, t.data});
      result.bytes_out += t.nbytes;
    } else {
      Matrix f32 = make_f32_matrix(t.shape[0], t.shape[1]);
      convert_to_f32(t.dtype, t.data, static_cast<size_t>(t.numel()), const_cast<float*>(f32.f32()));
      const Matrix q = convert_matrix(f32, format, &pool);
      const size_t bytes = q.bytes();
      buffers.emplace_back((bytes + 7) / 8);
      std::memcpy(buffers.back().data(), q.data, bytes);
      out.push_back({name, DType::U8,
                     {t.shape[0], quant::blocks_per_row(t.shape[1]), static_cast<int64_t>(quant::block_bytes(format))},
                     buffers.back().data()});
      result.bytes_out += bytes;
      ++result.quantized;
    }
    if (progress) progress(result.tensors, order.size());
  }
  write_safetensors(out_dir / "model.safetensors", out,
                    {{"format", "pt"},
                     {kWeightFormatKey, weight_format_name(format)},
                     {kBlockFormatKey, block_format_name(format)}});
  // Everything else in the folder (config, tokenizer, ...) but the weights.
  for (const auto& entry : fs::directory_iterator(in_dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string fname = entry.path().filename().string();
    if (fname.size() >= 12 && (fname.rfind(".safetensors") == fname.size() - 12)) continue;
    if (fname == "model.safetensors.index.json" || fname == "pytorch_model.bin" ||
        fname == "pytorch_model.bin.index.json")
      continue;
    fs::copy_file(entry.path(), out_dir / fname, fs::copy_options::overwrite_existing);
  }
  return result;
}

}  // namespace gptneo
