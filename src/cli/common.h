// Pieces every subcommand of the CLI shares: the model options, loading a
// model and tokenizer, parsing id lists, writing JSON.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "gptneo/model.h"
#include "gptneo/tokenizer.h"

namespace gptneo::cli {

// -m/--model, --tokenizer, --dtype, --threads.
struct ModelOptions {
  std::string model_dir;
  std::string tokenizer_path;
  std::string dtype;  // empty: as stored for a quantized folder, else f32
  int threads = 0;
  std::string lora_dir;  // --lora: adapters merged into the weights at load
  std::string kv_cache = "auto";  // --kv-cache: f32, f16, or auto (by the weights)

  // --kv-cache as a format, unset for auto; throws naming the value when it
  // is none of the three.
  std::optional<KVCacheFormat> kv_cache_format() const;

  void add_to(CLI::App& cmd, bool with_model = true);
  // The model folder: -m, else $GPTNEO_MODEL, else the bundled default model.
  std::filesystem::path resolve_model_dir() const;
  std::unique_ptr<Model> load_model() const;
  // The tokenizer from --tokenizer, else from the model folder; throws a
  // clear error when there is none.
  Tokenizer load_tokenizer() const;
  bool has_tokenizer() const;
};

// Parses "1,2,3" (spaces allowed); throws gptneo::Error on anything else.
std::vector<TokenId> parse_ids(const std::string& text);
// Reads a whole file; throws gptneo::Error naming it.
std::string read_text_file(const std::string& path);
// Prints a JSON value on one line to stdout.
void print_json(const nlohmann::json& j);
// Writes text to stdout exactly, plus a newline when stdout is a terminal.
void print_text(const std::string& text);

// One registration function per subcommand file.
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_tokenize_commands(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_plot_command(CLI::App& app);
// gptneo bench --train (in cmd_train.cpp): training speed at a config's shapes, shape "4x256".
void run_train_bench(const std::string& label, const std::string& config_json, int threads, const std::string& shape,
                     bool json);
void add_eval_command(CLI::App& app);

}  // namespace gptneo::cli
