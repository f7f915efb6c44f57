// pytorch_model.bin: the ZIP archive torch.save writes (PyTorch >= 1.6).
//
//   <prefix>/data.pkl     the state dict, pickled (protocol 2): names ->
//                         torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
//   <prefix>/data/<key>   the raw little-endian bytes of each storage
//
// The pickle is read by a restricted reader (io/pickle.h) that accepts only
// the globals a tensor state dict uses (the tensor rebuild functions, the
// typed storage classes, collections.OrderedDict) and never runs anything.
// Tensors that are contiguous views of their storage point straight into the
// memory-mapped archive; strided views are copied into contiguous memory.
// Several tensors may share one storage (released GPT-Neo files store
// lm_head.weight as a view of wte).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "io/tensor_view.h"

namespace gptneo {

class ZipArchive;

class PytorchBinFile {
 public:
  // Reads and validates the whole file; throws gptneo::Error naming the
  // file and the problem (not a ZIP archive, a refused global, a missing or
  // short storage record, a view outside its storage, ...).
  explicit PytorchBinFile(const std::filesystem::path& path);

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // File-level metadata, as SafetensorsFile has; a torch.save archive has none.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<ZipArchive> zip_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace gptneo
