// The generation options as command-line flags, shared by `generate` and `chat`.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "gptneo/generate.h"

namespace gptneo::cli {

struct GenerationFlags {
  GenerateOptions options;  // most flags are bound to it directly
  std::vector<std::string> stop;
  std::string logit_bias;      // "ID:BIAS,..."
  std::string ban;             // "word,word"
  std::string early_stopping;  // "", "true", "false", "never"
  std::string truncate;        // "", "left", "none"
  bool ignore_eos = false;

  // `chat` gets no beam search, n, logprobs or stop flags of its own (the
  // template's stop sequences apply).
  void add_to(CLI::App& cmd, bool for_chat = false);
  // The options with every string flag parsed; throws gptneo::Error naming a
  // bad value.
  GenerateOptions resolve() const;
};

// "\n", "\t", "\\" and "\r" in a flag's value become the characters.
std::string unescape(const std::string& s);

}  // namespace gptneo::cli
