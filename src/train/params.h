// A set of named float32 tensors stored back to back in one buffer, with a
// gradient buffer of the same layout. The optimizer, gradient clipping, MPI
// all-reduce and checkpoints all work on the flat buffers; the names and
// shapes (Hugging Face's, or PEFT's for LoRA adapters) are for files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gptneo/convert.h"

namespace gptneo::training {

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0;  // into values / grads, in floats
  size_t numel = 0;
  // AdamW's decoupled weight decay applies: tensors of 2 or more dimensions
  // (weights, embeddings), not biases or LayerNorm parameters.
  bool decay = false;
};

class ParamSet {
 public:
  // Declares a tensor; returns its offset. Call allocate() after the last.
  size_t add(const std::string& name, std::vector<int64_t> shape);
  // Sizes values and grads (zeros).
  void allocate();

  const std::vector<ParamInfo>& infos() const { return infos_; }
  const ParamInfo& info(const std::string& name) const;
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return total_; }

  float* value(size_t offset) { return values.data() + offset; }
  const float* value(size_t offset) const { return values.data() + offset; }
  float* grad(size_t offset) { return grads.data() + offset; }

  void zero_grads();
  // The tensors as save_model() takes them.
  std::map<std::string, FloatTensor> tensors() const;

  std::vector<float> values;
  std::vector<float> grads;

 private:
  std::vector<ParamInfo> infos_;
  std::map<std::string, size_t> index_;
  size_t total_ = 0;
};

// A small deterministic random source (xoshiro256**): the same numbers on
// every platform and standard library, so that a seed reproduces a run.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();          // [0, 1)
  double normal();           // standard normal (Box-Muller)
  uint64_t below(uint64_t n);  // [0, n)

 private:
  uint64_t s_[4];
};

}  // namespace gptneo::training
