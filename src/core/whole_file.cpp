#include "core/whole_file.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

std::string read_whole_file(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) throw Error(fmt::format("{} is a folder, not a file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open {}", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace gptneo
