#include "io/json_fields.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

using nlohmann::json;

void JsonFields::fail(const std::string& message) const { throw Error(fmt::format("{}: {}", where_, message)); }

const char* JsonFields::first_present(std::initializer_list<const char*> keys) const {
  for (const char* k : keys)
    if (has(k)) return k;
  return nullptr;
}

std::optional<int64_t> JsonFields::opt_integer(const char* key, int64_t min) const {
  if (!has(key)) return std::nullopt;
  const nlohmann::json& v = j_[key];
  if (!v.is_number_integer() || v.get<int64_t>() < min)
    fail(fmt::format("field \"{}\" must be an integer >= {}, found {}", key, min, v.dump()));
  return v.get<int64_t>();
}

int64_t JsonFields::integer(const char* key, int64_t min) const {
  const auto v = opt_integer(key, min);
  if (!v) fail(fmt::format("missing field \"{}\"", key));
  return *v;
}

std::optional<double> JsonFields::opt_number(const char* key) const {
  if (!has(key)) return std::nullopt;
  const nlohmann::json& v = j_[key];
  if (!v.is_number()) fail(fmt::format("field \"{}\" must be a number, found {}", key, v.dump()));
  return v.get<double>();
}

double JsonFields::number(const char* key) const {
  const auto v = opt_number(key);
  if (!v) fail(fmt::format("missing field \"{}\"", key));
  return *v;
}

std::optional<std::string> JsonFields::opt_string(const char* key) const {
  if (!has(key)) return std::nullopt;
  const nlohmann::json& v = j_[key];
  if (!v.is_string()) fail(fmt::format("field \"{}\" must be a string, found {}", key, v.dump()));
  return v.get<std::string>();
}

std::string JsonFields::string(const char* key) const {
  const auto v = opt_string(key);
  if (!v) fail(fmt::format("missing field \"{}\"", key));
  return *v;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(fmt::format("{} is not valid JSON: {}", path, e.what()));
  }
}

}  // namespace gptneo
