// Reading a whole file into memory, for the small text and JSON files the
// commands take (task files, prompts, texts to tokenize).
#pragma once

#include <filesystem>
#include <string>

namespace gptneo {

// The bytes of `path`; throws gptneo::Error naming it when it is a folder or
// cannot be opened.
std::string read_whole_file(const std::filesystem::path& path);

}  // namespace gptneo
