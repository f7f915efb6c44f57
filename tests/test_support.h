// Shared helpers of the test suite: fixture paths, golden files, running the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace gptneo::test {

inline std::filesystem::path data_dir() { return GPTNEO_TEST_DATA; }
inline std::filesystem::path source_dir() { return GPTNEO_SOURCE_DIR; }
inline std::filesystem::path neo_tiny_dir() { return data_dir() / "neo-tiny"; }
// The bundled model is the reference's neo-trained.
inline std::filesystem::path neo_trained_dir() { return source_dir() / "models" / "neo-mini"; }
inline std::filesystem::path tokenizer_dir() { return data_dir() / "tokenizer"; }

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Copies a model folder (files only) into `to`.
void copy_folder(const std::filesystem::path& from, const std::filesystem::path& to);
void write_file(const std::filesystem::path& path, const std::string& bytes);
std::string read_file(const std::filesystem::path& path);
nlohmann::json read_json(const std::filesystem::path& path);

// Values of a golden tensor as int64 / double.
std::vector<int64_t> ints(const TensorView& t);
std::vector<double> doubles(const TensorView& t);

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the gptneo binary with `args` (each passed as one argument).
CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "");

}  // namespace gptneo::test
