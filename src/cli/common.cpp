#include "cli/common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/whole_file.h"
#include "gptneo/error.h"
#include "io/quantized_weights.h"

namespace gptneo::cli {

namespace fs = std::filesystem;

void ModelOptions::add_to(CLI::App& cmd, bool with_model) {
  if (with_model)
    cmd.add_option("-m,--model", model_dir,
                   "Hugging Face model folder (config.json + weights); default: the bundled models/neo-mini");
  cmd.add_option("--tokenizer", tokenizer_path, "tokenizer.json, vocab.json, or a folder holding them");
  cmd.add_option("--dtype", dtype,
                 "weight format in memory: f32, f16, bf16, q8 or q4 (default: as stored for a quantized folder, "
                 "else f32)");
  cmd.add_option("--kv-cache", kv_cache,
                 "how KV caches keep keys and values: f32 (exact) or f16 (half the memory and the bytes attention "
                 "reads; each value rounded to 11 significant bits); default auto: f32 with f32 weights, f16 with "
                 "16-bit or quantized ones");
  cmd.add_option("--threads", threads, "threads to compute with (default: one per physical core)");
  cmd.add_option("--lora", lora_dir, "LoRA adapter folder (PEFT layout, e.g. from gptneo train --lora-rank) "
                                     "merged into the weights at load");
}

fs::path ModelOptions::resolve_model_dir() const {
  if (!model_dir.empty()) return model_dir;
  if (const char* env = std::getenv("GPTNEO_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates = {GPTNEO_DEFAULT_MODEL_DIR};
  // Beside the executable, for an installed or moved binary.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "models" / "neo-mini");
    candidates.push_back(exe.parent_path().parent_path() / "models" / "neo-mini");
  }
  for (const auto& c : candidates)
    if (fs::exists(c / "config.json")) return c;
  throw Error("no model given (-m DIR) and the bundled model models/neo-mini was not found");
}

std::optional<KVCacheFormat> ModelOptions::kv_cache_format() const {
  if (kv_cache == "auto") return std::nullopt;
  if (kv_cache == "f32") return KVCacheFormat::F32;
  if (kv_cache == "f16") return KVCacheFormat::F16;
  throw Error(fmt::format("unknown --kv-cache \"{}\" (expected f32, f16 or auto)", kv_cache));
}

std::unique_ptr<Model> ModelOptions::load_model() const {
  LoadOptions options;
  options.threads = threads;
  options.kv_cache = kv_cache_format();
  options.lora_dir = lora_dir;
  const fs::path dir = resolve_model_dir();
  if (dtype.empty()) {
    // A quantized folder loads as it is stored (mapped, no conversion).
    options.weights = stored_weight_format(dir).value_or(WeightFormat::F32);
  } else {
    const auto format = weight_format_from_name(dtype);
    if (!format) throw Error(fmt::format("unknown --dtype \"{}\" (expected f32, f16, bf16, q8 or q4)", dtype));
    options.weights = *format;
  }
  return Model::load(dir, options);
}

bool ModelOptions::has_tokenizer() const {
  if (!tokenizer_path.empty()) return true;
  try {
    return Tokenizer::exists_in(resolve_model_dir());
  } catch (const Error&) {
    return false;
  }
}

Tokenizer ModelOptions::load_tokenizer() const {
  if (!tokenizer_path.empty()) return Tokenizer::load(tokenizer_path);
  const fs::path dir = resolve_model_dir();
  if (!Tokenizer::exists_in(dir))
    throw Error(fmt::format("no tokenizer files (tokenizer.json, or vocab.json + merges.txt) in {}: "
                            "give --tokenizer PATH",
                            dir.string()));
  return Tokenizer::load(dir);
}

std::vector<TokenId> parse_ids(const std::string& text) {
  std::vector<TokenId> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t\n");
    const auto e = item.find_last_not_of(" \t\n");
    if (b == std::string::npos) throw Error(fmt::format("empty entry in the id list \"{}\"", text));
    const std::string s = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || v < 0 || v > INT32_MAX)
      throw Error(fmt::format("\"{}\" in the id list is not a token id (a non-negative integer)", s));
    ids.push_back(static_cast<TokenId>(v));
  }
  if (ids.empty()) throw Error("the id list is empty");
  return ids;
}

std::string read_text_file(const std::string& path) { return read_whole_file(path); }

void print_json(const nlohmann::json& j) {
  // Invalid UTF-8 in strings (never produced by design) is replaced, not fatal.
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void print_text(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (::isatty(STDOUT_FILENO)) std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace gptneo::cli
