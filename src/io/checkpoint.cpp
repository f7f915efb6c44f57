#include "io/checkpoint.h"

#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gptneo/error.h"
#include "io/json_fields.h"
#include "io/pytorch_bin.h"
#include "io/safetensors.h"

namespace gptneo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
// PyTorch's format, read only when there are no safetensors (as transformers does).
constexpr const char* kBinFile = "pytorch_model.bin";
constexpr const char* kBinIndexFile = "pytorch_model.bin.index.json";

// The shard file names of a sharded checkpoint, in first-use order.
std::vector<std::string> shard_names(const fs::path& index_path) {
  const json index = read_json_file(index_path.string());
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(fmt::format("{}: no \"weight_map\" object", index_path.string()));
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string())
      throw Error(fmt::format("{}: weight_map entry for '{}' is not a file name", index_path.string(), tensor));
    const std::string f = file.get<std::string>();
    // A shard name is a plain file name inside the folder, nothing else.
    if (f.empty() || f.find('/') != std::string::npos || f == "..")
      throw Error(fmt::format("{}: invalid shard file name '{}'", index_path.string(), f));
    if (seen.insert(f).second) names.push_back(f);
  }
  return names;
}

}  // namespace

bool Checkpoint::exists_in(const fs::path& dir) {
  return fs::exists(dir / kSingleFile) || fs::exists(dir / kIndexFile) || fs::exists(dir / kBinFile) ||
         fs::exists(dir / kBinIndexFile);
}

Checkpoint Checkpoint::open(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error(fmt::format("model folder {} does not exist", dir.string()));
  Checkpoint ck;
  ck.dir_ = dir;
  std::vector<std::string> files;
  const char* index_file = nullptr;
  bool bin = false;
  if (fs::exists(dir / kIndexFile)) {
    index_file = kIndexFile;
  } else if (fs::exists(dir / kSingleFile)) {
    files = {kSingleFile};
  } else if (fs::exists(dir / kBinIndexFile)) {
    index_file = kBinIndexFile;
    bin = true;
  } else if (fs::exists(dir / kBinFile)) {
    files = {kBinFile};
    bin = true;
  } else {
    throw Error(fmt::format("no weights in {}: expected {} or {} (or {} / {})", dir.string(), kSingleFile, kIndexFile,
                            kBinFile, kBinIndexFile));
  }
  if (index_file) {
    files = shard_names(dir / index_file);
    for (const auto& f : files)
      if (!fs::exists(dir / f))
        throw Error(fmt::format("shard {} listed in {} is missing from {}", f, index_file, dir.string()));
  }
  auto add_file = [&](const auto& file) {
    for (const auto& [name, view] : file->tensors()) {
      if (ck.tensors_.count(name))
        throw Error(fmt::format("tensor '{}' appears in more than one file of {}", name, dir.string()));
      ck.tensors_.emplace(name, view);
    }
    ck.files_.push_back(file);
  };
  for (const auto& f : files) {
    if (bin) {
      add_file(std::make_shared<PytorchBinFile>(dir / f));
    } else {
      auto file = std::make_shared<SafetensorsFile>(dir / f);
      for (const auto& [key, value] : file->metadata()) ck.metadata_[key] = value;
      add_file(file);
    }
  }
  ck.file_names_ = files;
  return ck;
}

void Checkpoint::add(TensorView view) {
  const std::string name = view.name;
  tensors_.insert_or_assign(name, std::move(view));
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error(fmt::format("tensor '{}' is missing from the checkpoint in {}", name, dir_.string()));
  return it->second;
}

Checkpoint Checkpoint::synthetic(std::shared_ptr<const float[]> values, size_t count) {
  Checkpoint ck;
  ck.dir_ = "(synthetic weights)";
  ck.synthetic_ = std::move(values);
  ck.synthetic_count_ = count;
  return ck;
}

const TensorView& Checkpoint::get(const std::string& name, const std::vector<int64_t>& shape) const {
  if (synthetic_ && !tensors_.count(name)) {
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = shape;
    v.source = dir_.string();
    if (static_cast<size_t>(v.numel()) > synthetic_count_)
      throw Error(fmt::format("synthetic tensor '{}' {} is larger than the {} values provided", name,
                              v.shape_string(), synthetic_count_));
    // Each tensor starts at its own place in the values (chosen from its
    // name), so that layers do not hold the same bytes: a benchmark should
    // read as many distinct bytes as a real model has.
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    const size_t offset = static_cast<size_t>(h % (synthetic_count_ - static_cast<size_t>(v.numel()) + 1));
    v.data = reinterpret_cast<const uint8_t*>(synthetic_.get() + offset);
    v.nbytes = static_cast<size_t>(v.numel()) * sizeof(float);
    v.keep_alive = std::shared_ptr<const void>(synthetic_, synthetic_.get());
    return synthetic_views_.insert_or_assign(name, std::move(v)).first->second;
  }
  const TensorView& v = get(name);
  if (v.shape != shape) {
    TensorView expected;
    expected.shape = shape;
    throw Error(fmt::format("tensor '{}' in {} has shape {}, expected {} from config.json", name,
                            v.source, v.shape_string(), expected.shape_string()));
  }
  return v;
}

std::string Checkpoint::describe() const {
  if (file_names_.size() == 1) return file_names_[0];
  return fmt::format("{} shards", file_names_.size());
}

}  // namespace gptneo
