#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gptneo/error.h"

namespace gptneo {

using nlohmann::json;

namespace {

// Headers of real checkpoints are a few hundred kB at most; anything far
// larger is corruption, and refusing it early avoids a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error(fmt::format("{}: {}", path.string(), what));
}

std::vector<int64_t> parse_shape(const std::filesystem::path& path, const std::string& name,
                                 const json& j) {
  if (!j.is_array()) fail(path, fmt::format("tensor '{}': shape is not an array", name));
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      fail(path, fmt::format("tensor '{}': shape has an invalid dimension {}", name, d.dump()));
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

// numel * element size, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t elem) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

}  // namespace

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : file_(std::make_shared<MappedFile>(path)) {
  const size_t file_size = file_->size();
  if (file_size < 8)
    fail(path, fmt::format("truncated safetensors file ({} bytes, the 8-byte header length is missing)",
                           file_size));
  uint64_t header_len;
  std::memcpy(&header_len, file_->data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > file_size - 8)
    fail(path, fmt::format("header length {} runs past the end of the file ({} bytes): "
                           "the file is truncated or not safetensors",
                           header_len, file_size));
  const std::string_view header(reinterpret_cast<const char*>(file_->data()) + 8, header_len);
  json j;
  try {
    j = json::parse(header);
  } catch (const json::exception& e) {
    fail(path, fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) fail(path, "header is not a JSON object");

  const uint8_t* data_start = file_->data() + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (entry.is_object())
        for (const auto& [k, v] : entry.items())
          metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets"))
      fail(path, fmt::format("tensor '{}': entry needs dtype, shape and data_offsets", name));
    const auto& dt = entry["dtype"];
    const auto dtype = dt.is_string() ? dtype_from_name(dt.get<std::string>()) : std::nullopt;
    if (!dtype) fail(path, fmt::format("tensor '{}': unsupported dtype {}", name, dt.dump()));
    TensorView v;
    v.name = name;
    v.dtype = *dtype;
    v.shape = parse_shape(path, name, entry["shape"]);
    v.source = path.string();
    const auto& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      fail(path, fmt::format("tensor '{}': data_offsets must be two non-negative integers", name));
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size)
      fail(path, fmt::format("tensor '{}': data offsets [{}, {}] run past the end of the data ({} "
                             "bytes): the file is truncated or corrupt",
                             name, begin, end, data_size));
    const auto expected = byte_size(v.shape, dtype_size(v.dtype));
    if (!expected || *expected != end - begin)
      fail(path, fmt::format("tensor '{}': {} bytes stored but shape {} of {} needs {}", name,
                             end - begin, v.shape_string(), dtype_name(v.dtype),
                             expected ? std::to_string(*expected) : "more than 2^64"));
    v.data = data_start + begin;
    v.keep_alive = file_;
    v.nbytes = end - begin;
    tensors_.emplace(name, std::move(v));
  }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    const auto n = byte_size(t.shape, dtype_size(t.dtype));
    if (!n) throw Error(fmt::format("tensor '{}' is too large to write", t.name));
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + *n}}};
    sizes.push_back(*n);
    offset += *n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the Python writer does
  const uint64_t header_len = h.size();

  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
    out.write(reinterpret_cast<const char*>(&header_len), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (size_t i = 0; i < tensors.size(); ++i)
      out.write(static_cast<const char*>(tensors[i].data), static_cast<std::streamsize>(sizes[i]));
    out.flush();
    if (!out) throw Error(fmt::format("error while writing {} (disk full?)", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message()));
}

}  // namespace gptneo
