// The one exception type gptneo throws for bad input and failed operations.
//
// Every error message names the problem and, where there is one, the file,
// tensor or field involved, so that a user can act on it without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace gptneo {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gptneo
