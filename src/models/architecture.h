// The registry of supported architectures. An architecture is one source
// file (gpt_neo.cpp, ...) that knows its config.json fields, its weight
// names and the order of operations in its blocks; everything else is shared.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "io/json_fields.h"

namespace gptneo {

struct Architecture {
  std::string model_type;  // config.json's "model_type"
  std::string class_name;  // the transformers class, for messages
  // Fills a ModelConfig from config.json.
  std::function<ModelConfig(const JsonFields&)> parse_config;
  // Builds the model from its weights.
  std::function<std::unique_ptr<Model>(ModelConfig, const Checkpoint&, const LoadOptions&)> load;
};

// The architecture for `model_type`, or nullptr.
const Architecture* find_architecture(const std::string& model_type);
// All supported model types, for error messages and --help.
std::vector<std::string> supported_model_types();

// One entry per architecture file.
Architecture gpt_neo_architecture();
Architecture gpt_j_architecture();

// How many ids generation may emit when no tokenizer tells (`generate
// --prompt-ids` on a folder without tokenizer files). GPT-J pads its
// vocabulary from the GPT-2 tokenizer's 50257 ids (end-of-text 50256, the
// last one) to 50400, and the padding ids decode to nothing: a vocabulary
// larger than 50257 whose end-of-text id is 50256 is limited to 50257. Any
// other model may emit its whole vocabulary. (Defined in gpt_j.cpp.)
int64_t generation_vocab_size(const ModelConfig& config);

}  // namespace gptneo
