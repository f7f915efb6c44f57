// save_model / convert_model (include/gptneo/convert.h): both come down to
// write_folder, which plans the shards, converts element types one shard at
// a time (so converting a large model never holds more than one shard of
// converted weights), and writes every file atomically.
#include "gptneo/convert.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gptneo/error.h"
#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "io/json_fields.h"
#include "io/safetensors.h"

namespace gptneo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
// Files of a Hugging Face folder that are not weights and that loading needs.
constexpr const char* kCopiedFiles[] = {"tokenizer.json",          "vocab.json",        "merges.txt",
                                        "tokenizer_config.json",   "special_tokens_map.json",
                                        "added_tokens.json",       "generation_config.json"};
// Buffers old checkpoints carry that are not parameters (the causal mask and
// its fill value); transformers ignores them when loading.
constexpr const char* kBufferSuffixes[] = {".attn.attention.bias", ".attn.attention.masked_bias", ".attn.bias",
                                           ".attn.masked_bias"};

// A tensor to write, in its source element type.
struct Source {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  uint64_t numel;
};

// The safetensors element type of a weight format; only the plain float
// formats exist in files (quantized formats are an in-memory layout).
DType file_dtype(WeightFormat f) {
  if (f == WeightFormat::F32) return DType::F32;
  if (f == WeightFormat::F16) return DType::F16;
  if (f == WeightFormat::BF16) return DType::BF16;
  throw Error(fmt::format("weights can be saved as f32, f16 or bf16, not {}", weight_format_name(f)));
}

DType written_dtype(DType from, const std::optional<WeightFormat>& to) {
  if (!to || !dtype_is_float(from)) return from;
  return file_dtype(*to);
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F64: return "float64";
    default: return nullptr;
  }
}

// `n` elements of `src` (type `from`, any alignment) as type `to` (a float
// type), through float32 with round-to-nearest-even as torch's .to().
std::vector<uint8_t> convert_elements(DType from, const void* src, uint64_t n, DType to) {
  std::vector<uint8_t> out(static_cast<size_t>(n * dtype_size(to)));
  constexpr uint64_t kChunk = 1 << 16;
  std::vector<float> f(kChunk);
  for (uint64_t i = 0; i < n; i += kChunk) {
    const uint64_t m = std::min(kChunk, n - i);
    convert_to_f32(from, static_cast<const uint8_t*>(src) + i * dtype_size(from), m, f.data());
    uint8_t* dst = out.data() + i * dtype_size(to);
    for (uint64_t k = 0; k < m; ++k) {
      if (to == DType::F32) {
        std::memcpy(dst + 4 * k, &f[k], 4);
      } else {
        const uint16_t h = to == DType::F16 ? f32_to_f16(f[k]) : f32_to_bf16(f[k]);
        std::memcpy(dst + 2 * k, &h, 2);
      }
    }
  }
  return out;
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message()));
}

// config.json with its dtype field ("torch_dtype" in transformers 4, "dtype"
// in 5) set to the type the weights were written in.
std::string updated_config(const std::string& text, std::optional<DType> weights_type) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw Error("config.json is not a JSON object");
  if (weights_type && torch_dtype_name(*weights_type)) {
    const char* name = torch_dtype_name(*weights_type);
    bool set = false;
    for (const char* key : {"torch_dtype", "dtype"})
      if (j.contains(key)) j[key] = name, set = true;
    if (!set) j["torch_dtype"] = name;
  }
  return j.dump(2) + "\n";
}

// Groups tensors into shards of at most `limit` bytes, in order, as
// transformers does: a tensor larger than the limit gets a shard of its own.
std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& bytes, uint64_t limit) {
  std::vector<std::vector<size_t>> shards(1);
  uint64_t current = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (!shards.back().empty() && current + bytes[i] > limit) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += bytes[i];
  }
  return shards;
}

// Weight files of an earlier save that the new layout does not use.
void remove_stale_weights(const fs::path& dir, const std::set<std::string>& written) {
  static const std::regex shard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool weights = name == kSingleFile || name == kIndexFile || std::regex_match(name, shard);
    if (weights && !written.count(name)) fs::remove(e.path());
  }
}

SaveResult write_folder(const fs::path& dir, const std::string& config_json, const std::vector<Source>& tensors,
                        const SaveOptions& options) {
  if (tensors.empty()) throw Error("no tensors to save");
  if (options.max_shard_bytes == 0) throw Error("the shard size limit must be positive");
  if (options.dtype) file_dtype(*options.dtype);  // refuses a format files cannot hold
  fs::create_directories(dir);
  SaveResult result;

  std::vector<DType> types;
  std::vector<uint64_t> bytes;
  std::set<DType> float_types;
  for (const auto& t : tensors) {
    types.push_back(written_dtype(t.dtype, options.dtype));
    bytes.push_back(t.numel * dtype_size(types.back()));
    if (dtype_is_float(types.back())) float_types.insert(types.back());
    result.weight_bytes += bytes.back();
  }
  const auto shards = plan_shards(bytes, options.max_shard_bytes);
  json weight_map = json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file =
        shards.size() == 1 ? kSingleFile : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    std::vector<TensorToWrite> out;
    std::vector<std::vector<uint8_t>> converted;  // this shard's converted copies
    converted.reserve(shards[s].size());
    for (const size_t i : shards[s]) {
      const Source& t = tensors[i];
      const void* data = t.data;
      if (types[i] != t.dtype) data = converted.emplace_back(convert_elements(t.dtype, t.data, t.numel, types[i])).data();
      out.push_back({t.name, types[i], t.shape, data});
      weight_map[t.name] = file;
    }
    write_safetensors(dir / file, out, {{"format", "pt"}});
    result.files.push_back(file);
  }
  if (shards.size() > 1) {
    const json index = {{"metadata", {{"total_size", result.weight_bytes}}}, {"weight_map", weight_map}};
    write_text_atomic(dir / kIndexFile, index.dump(2) + "\n");
    result.files.push_back(kIndexFile);
  }
  remove_stale_weights(dir, {result.files.begin(), result.files.end()});

  const std::optional<DType> uniform = float_types.size() == 1 ? std::optional(*float_types.begin()) : std::nullopt;
  write_text_atomic(dir / "config.json", updated_config(config_json, uniform));
  result.files.push_back("config.json");
  if (!options.copy_files_from.empty()) {
    for (const char* name : kCopiedFiles) {
      const fs::path src = options.copy_files_from / name;
      if (!fs::is_regular_file(src) || fs::equivalent(options.copy_files_from, dir)) continue;
      const fs::path tmp = (dir / name).string() + ".tmp";
      fs::copy_file(src, tmp, fs::copy_options::overwrite_existing);
      fs::rename(tmp, dir / name);
      result.files.push_back(name);
    }
  }
  result.tensors = static_cast<int64_t>(tensors.size());
  return result;
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::string_view x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

// transformers ties the head to the embedding unless the config says not
// to; GPTJConfig's default is untied.
bool head_is_tied(const ModelConfig& c) {
  const json j = json::parse(c.json, nullptr, false);
  const bool by_default = c.model_type != "gptj";
  return j.is_object() && j.value("tie_word_embeddings", by_default);
}

}  // namespace

SaveResult save_model(const fs::path& dir, const std::string& config_json,
                      const std::map<std::string, FloatTensor>& tensors, const SaveOptions& options) {
  std::vector<Source> sources;
  for (const auto& [name, t] : tensors) {
    uint64_t n = 1;
    for (const int64_t d : t.shape) {
      if (d < 0) throw Error(fmt::format("save_model: tensor '{}' has a negative dimension", name));
      n *= static_cast<uint64_t>(d);
    }
    if (t.data == nullptr && n > 0) throw Error(fmt::format("save_model: tensor '{}' has no data", name));
    sources.push_back({name, DType::F32, t.shape, t.data, n});
  }
  return write_folder(dir, config_json, sources, options);
}

SaveResult convert_model(const fs::path& from, const fs::path& to, const SaveOptions& options) {
  const ModelConfig config = ModelConfig::load(from);  // validates it: only models gptneo runs
  if (fs::exists(to) && (!fs::is_directory(to) || !fs::is_empty(to)))
    throw Error(fmt::format("the output folder {} already exists and is not empty", to.string()));
  const Checkpoint ck = Checkpoint::open(from);
  const bool tied = head_is_tied(config);

  std::vector<Source> sources;
  std::vector<std::string> dropped;
  for (const auto& [name, t] : ck.tensors()) {
    if (std::any_of(std::begin(kBufferSuffixes), std::end(kBufferSuffixes),
                    [&](const char* s) { return ends_with(name, s); })) {
      dropped.push_back(name + " (attention-mask buffer, not a parameter)");
      continue;
    }
    if (tied && name == "lm_head.weight" &&
        (ck.has("transformer.wte.weight") || ck.has("wte.weight"))) {
      dropped.push_back(name + " (tied to the token embedding)");
      continue;
    }
    sources.push_back({name, t.dtype, t.shape, t.data, static_cast<uint64_t>(t.numel())});
  }

  SaveOptions o = options;
  if (o.copy_files_from.empty()) o.copy_files_from = from;
  const bool created = !fs::exists(to);
  try {
    SaveResult r = write_folder(to, config.json, sources, o);
    r.dropped = std::move(dropped);
    return r;
  } catch (...) {
    // Leave no half-written model behind.
    std::error_code ec;
    if (created) fs::remove_all(to, ec);
    throw;
  }
}

}  // namespace gptneo
