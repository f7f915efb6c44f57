// Small file helpers of the trainer.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace gptneo::training {

// Writes `text` to `path` through `path`.tmp and a rename.
void write_text_atomic(const std::filesystem::path& path, const std::string& text);
// Reads a JSON file; throws gptneo::Error naming it when missing or malformed.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace gptneo::training
