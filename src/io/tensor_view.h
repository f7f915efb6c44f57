// A read-only view of one tensor stored in a checkpoint file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace gptneo {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into a memory-mapped file
  size_t nbytes = 0;
  std::string source;  // the file it came from, for error messages
  std::shared_ptr<const void> keep_alive;  // holds the mapping `data` points into

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string shape_string() const;
};

}  // namespace gptneo
