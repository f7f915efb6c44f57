#include "models/architecture.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "gptneo/error.h"
#include "io/json_fields.h"

namespace gptneo {

namespace {
const std::vector<Architecture>& registry() {
  static const std::vector<Architecture> archs = {
      gpt_neo_architecture(),
      gpt_j_architecture(),
  };
  return archs;
}
}  // namespace

const Architecture* find_architecture(const std::string& model_type) {
  for (const auto& a : registry())
    if (a.model_type == model_type) return &a;
  return nullptr;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> out;
  for (const auto& a : registry()) out.push_back(a.model_type);
  return out;
}

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} is not valid JSON: {}", where, e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", where));
  const JsonFields f(j, where);
  const std::string type = f.string("model_type");
  const Architecture* arch = find_architecture(type);
  if (!arch)
    throw Error(fmt::format("{}: unsupported model_type \"{}\" (supported: {})", where, type,
                            fmt::join(supported_model_types(), ", ")));
  ModelConfig c = arch->parse_config(f);
  c.model_type = type;
  c.json = json_text;
  if (c.hidden_size % c.num_heads != 0)
    f.fail(fmt::format("hidden size {} is not a multiple of the number of heads {}", c.hidden_size,
                       c.num_heads));
  if (static_cast<int64_t>(c.attention.size()) != c.num_layers)
    f.fail(fmt::format("{} attention layer kinds given for {} layers", c.attention.size(), c.num_layers));
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  if (!std::filesystem::is_directory(dir))
    throw Error(fmt::format("model folder {} does not exist", dir.string()));
  if (!std::filesystem::exists(path)) throw Error(fmt::format("{} is missing", path.string()));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error(fmt::format("cannot read {}", path.string()));
  return parse(text.str(), path.string());
}

}  // namespace gptneo
