#include "tokenizer/loader.h"

#include <fmt/format.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gptneo/error.h"

namespace gptneo::tok {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kTokenizerJson = "tokenizer.json";
constexpr const char* kVocabJson = "vocab.json";
constexpr const char* kMergesTxt = "merges.txt";
constexpr const char* kEndOfText = "<|endoftext|>";

[[noreturn]] void fail(const fs::path& file, std::string_view what) {
  throw Error(fmt::format("tokenizer file {}: {}", file.string(), what));
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (!fs::exists(file)) fail(file, "no such file");
    fail(file, "cannot be opened for reading");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(file, "read error");
  return std::move(buffer).str();
}

json parse_json(const fs::path& file) {
  const std::string text = read_file(file);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(file, fmt::format("malformed JSON: {}", e.what()));
  }
}

TokenId to_token_id(const json& value, const fs::path& file, std::string_view what) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > std::numeric_limits<TokenId>::max()) {
    fail(file, fmt::format("{}: expected a non-negative integer id, got {}", what, value.dump()));
  }
  return static_cast<TokenId>(value.get<int64_t>());
}

std::vector<std::pair<std::string, TokenId>> read_vocab(const json& vocab, const fs::path& file,
                                                        std::string_view where) {
  if (!vocab.is_object()) fail(file, fmt::format("{} must be an object of token -> id", where));
  std::vector<std::pair<std::string, TokenId>> entries;
  entries.reserve(vocab.size());
  for (const auto& [spelling, id] : vocab.items()) {
    entries.emplace_back(spelling, to_token_id(id, file, fmt::format("{} entry \"{}\"", where, spelling)));
  }
  return entries;
}

// One entry of tokenizer.json's model.merges: "a b" (older files) or ["a", "b"].
Merge read_json_merge(const json& entry, size_t index, const fs::path& file) {
  if (entry.is_string()) {
    const std::string& text = entry.get_ref<const std::string&>();
    const size_t space = text.find(' ');
    if (space != std::string::npos && text.find(' ', space + 1) == std::string::npos) {
      return Merge{text.substr(0, space), text.substr(space + 1), 0};
    }
  } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    return Merge{entry[0].get<std::string>(), entry[1].get<std::string>(), 0};
  }
  fail(file, fmt::format("model.merges[{}] must be \"a b\" or [\"a\", \"b\"], got {}", index, entry.dump()));
}

void check_supported(const json& root, const fs::path& file) {
  const json& model = root["model"];
  if (model.contains("type") && model["type"] != "BPE") {
    fail(file, fmt::format("model.type {} is not supported (only BPE)", model["type"].dump()));
  }
  const json pre = root.value("pre_tokenizer", json());
  if (pre.is_object()) {
    if (pre.value("type", "") != "ByteLevel") {
      fail(file, fmt::format("pre_tokenizer {} is not supported (only GPT-2's ByteLevel)",
                             pre.value("type", json()).dump()));
    }
    if (pre.value("add_prefix_space", false)) {
      fail(file, "pre_tokenizer.add_prefix_space = true is not supported");
    }
  }
}

TokenizerFiles read_tokenizer_json(const fs::path& file, const json& root) {
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    fail(file, "expected an object with a \"model\" object (the tokenizers library's format)");
  }
  check_supported(root, file);
  const json& model = root["model"];
  TokenizerFiles files{file, file, read_vocab(model.value("vocab", json()), file, "model.vocab"), {}, {}};
  const json merges = model.value("merges", json::array());
  if (!merges.is_array()) fail(file, "model.merges must be an array");
  files.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) files.merges.push_back(read_json_merge(merges[i], i, file));

  const json added = root.value("added_tokens", json::array());
  if (!added.is_array()) fail(file, "added_tokens must be an array");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& token = added[i];
    if (!token.is_object() || !token.contains("content") || !token["content"].is_string() ||
        !token.contains("id")) {
      fail(file, fmt::format("added_tokens[{}] needs a string \"content\" and an \"id\"", i));
    }
    files.added_tokens.push_back(
        AddedToken{token["content"].get<std::string>(),
                   to_token_id(token["id"], file, fmt::format("added_tokens[{}].id", i)),
                   token.value("special", false)});
  }
  return files;
}

std::vector<Merge> read_merges_txt(const fs::path& file) {
  const std::string text = read_file(file);
  std::vector<Merge> merges;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // The first line is usually "#version: 0.2"; blank lines carry nothing.
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      fail(file,
           fmt::format("line {}: expected two tokens separated by one space, got \"{}\"", line_no, line));
    }
    merges.push_back(Merge{std::string(line.substr(0, space)), std::string(line.substr(space + 1)), line_no});
  }
  return merges;
}

TokenizerFiles read_vocab_and_merges(const fs::path& vocab_file, const json& vocab) {
  const fs::path merges_file = vocab_file.parent_path() / kMergesTxt;
  TokenizerFiles files{vocab_file,
                       merges_file,
                       read_vocab(vocab, vocab_file, "the vocabulary"),
                       read_merges_txt(merges_file),
                       {}};
  // This layout has no added_tokens list; GPT-2's one special token lives in
  // the vocabulary and must still be cut out of input text.
  for (const auto& [spelling, id] : files.vocab) {
    if (spelling == kEndOfText) files.added_tokens.push_back(AddedToken{spelling, id, true});
  }
  return files;
}

TokenizerFiles read_json_file(const fs::path& file) {
  const json root = parse_json(file);
  try {
    // A tokenizer.json has a "model"; a vocab.json is a flat token -> id map.
    // ("model" alone is no sign: it is also a word in GPT-2's vocab.json.)
    const bool has_model = root.is_object() && root.contains("model") && root["model"].is_object();
    if (has_model || file.filename() == kTokenizerJson) return read_tokenizer_json(file, root);
    return read_vocab_and_merges(file, root);
  } catch (const json::exception& e) {
    // A field of an unexpected type (e.g. "special": "yes").
    fail(file, fmt::format("unexpected content: {}", e.what()));
  }
}

}  // namespace

bool tokenizer_files_exist(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kTokenizerJson, ec) ||
         (fs::is_regular_file(dir / kVocabJson, ec) && fs::is_regular_file(dir / kMergesTxt, ec));
}

TokenizerFiles read_tokenizer_files(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / kTokenizerJson, ec)) return read_json_file(path / kTokenizerJson);
    if (fs::exists(path / kVocabJson, ec)) return read_json_file(path / kVocabJson);
    throw Error(fmt::format("no tokenizer in {}: expected {} or {} + {}", path.string(), kTokenizerJson,
                            kVocabJson, kMergesTxt));
  }
  if (!fs::exists(path, ec)) fail(path, "no such file or directory");
  // merges.txt names the pair too: its vocabulary sits beside it.
  if (path.filename() == kMergesTxt) return read_json_file(path.parent_path() / kVocabJson);
  return read_json_file(path);
}

}  // namespace gptneo::tok
