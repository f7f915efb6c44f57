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

}  // namespace gptneo
