// The weights of a Hugging Face model folder, whatever files hold them:
// `model.safetensors`, or a sharded set described by
// `model.safetensors.index.json`; failing those, PyTorch's
// `pytorch_model.bin` or `pytorch_model.bin.index.json` + shards (see
// io/pytorch_bin.h). All files are memory-mapped and validated when the
// checkpoint is opened; tensors are then looked up by name.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_view.h"

namespace gptneo {

class SafetensorsFile;

class Checkpoint {
 public:
  // Opens the weights in `dir` (safetensors preferred over .bin when both
  // are present). Throws gptneo::Error when none are found, a shard listed
  // in the index is missing, or a file is corrupt.
  static Checkpoint open(const std::filesystem::path& dir);
  // True when `dir` holds weight files open() recognises.
  static bool exists_in(const std::filesystem::path& dir);

  // A checkpoint without files in which every tensor exists, for
  // benchmarks at real shapes: get() answers any name with a float32 view of
  // the shape asked for over `values` (shared by all tensors; it must hold
  // at least as many floats as the largest tensor asked for).
  static Checkpoint synthetic(std::shared_ptr<const float[]> values, size_t count);

  bool has(const std::string& name) const { return synthetic_ || tensors_.count(name) != 0; }
  // The tensor `name`; throws gptneo::Error naming it when it is absent.
  const TensorView& get(const std::string& name) const;
  // As get(), and checks the shape; throws naming expected and found shapes.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) const;

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // The files' safetensors __metadata__ entries, merged.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& dir() const { return dir_; }
  // A one-line description of the files ("model.safetensors", "2 shards").
  std::string describe() const;

  // Adds a tensor from another source (used by other file formats); its
  // keep_alive holds whatever memory it points into.
  void add(TensorView view);

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<const void>> files_;  // the open files
  std::map<std::string, TensorView> tensors_;
  std::vector<std::string> file_names_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<const float[]> synthetic_;  // set for synthetic()
  size_t synthetic_count_ = 0;
  mutable std::map<std::string, TensorView> synthetic_views_;
};

}  // namespace gptneo
