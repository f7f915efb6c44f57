#include "train/files.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::training {

void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
    out << text;
    out.flush();
    if (!out) throw Error(fmt::format("error writing {}", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("cannot read {}", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} is not valid JSON: {}", path.string(), e.what()));
  }
}

}  // namespace gptneo::training
