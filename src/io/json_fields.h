// Reading typed fields out of JSON documents (config.json and friends) with
// errors that name the document and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gptneo {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  // The first of `keys` present (configs spell some fields two ways).
  const char* first_present(std::initializer_list<const char*> keys) const;

  // Required fields: throw gptneo::Error "WHERE: missing field "KEY"" or
  // "WHERE: field "KEY" must be ...".
  int64_t integer(const char* key, int64_t min = 1) const;
  double number(const char* key) const;
  std::string string(const char* key) const;

  // Optional fields: std::nullopt when absent or null; errors when malformed.
  std::optional<int64_t> opt_integer(const char* key, int64_t min = 0) const;
  std::optional<double> opt_number(const char* key) const;
  std::optional<std::string> opt_string(const char* key) const;

  const nlohmann::json& json() const { return j_; }
  const std::string& where() const { return where_; }
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// Parses a JSON file; throws gptneo::Error naming the file when it is
// missing or not valid JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace gptneo
