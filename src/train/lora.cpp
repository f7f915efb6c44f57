#include "train/lora.h"

#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gptneo/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/files.h"
#include "train/gemm.h"

namespace gptneo::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kPrefix = "base_model.model.";

struct AdapterConfig {
  int64_t rank = 0;
  double alpha = 0;
  double scale = 0;
  std::vector<std::string> modules;
};

AdapterConfig read_adapter_config(const fs::path& dir) {
  const fs::path path = dir / kConfigFile;
  if (!fs::exists(path)) throw Error(fmt::format("{} has no {} (not a LoRA adapter folder)", dir.string(), kConfigFile));
  const json j = read_json_file(path);
  auto fail = [&](const std::string& what) { throw Error(fmt::format("{}: {}", path.string(), what)); };
  if (j.value("peft_type", "LORA") != "LORA") fail("peft_type is not LORA");
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0) fail("missing or bad \"r\"");
  AdapterConfig c;
  c.rank = j["r"].get<int64_t>();
  c.alpha = j.contains("lora_alpha") && j["lora_alpha"].is_number() ? j["lora_alpha"].get<double>() : 8.0;
  if (j.value("fan_in_fan_out", false)) fail("fan_in_fan_out adapters (Conv1D layers) are not GPT-Neo's");
  if (j.value("use_dora", false)) fail("DoRA adapters are not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && j[key].is_object() && !j[key].empty()) fail(fmt::format("\"{}\" is not supported", key));
  const bool rslora = j.value("use_rslora", false);
  c.scale = rslora ? c.alpha / std::sqrt(static_cast<double>(c.rank)) : c.alpha / static_cast<double>(c.rank);
  if (j.contains("target_modules") && j["target_modules"].is_array())
    for (const auto& m : j["target_modules"]) c.modules.push_back(m.get<std::string>());
  return c;
}

const char* short_target(const std::string& module) {
  static const std::pair<const char*, const char*> names[] = {{"q_proj", "q"},     {"k_proj", "k"}, {"v_proj", "v"},
                                                              {"out_proj", "out"}, {"c_fc", "fc"},  {"c_proj", "proj"}};
  for (const auto& [m, s] : names)
    if (module == m) return s;
  return nullptr;
}

}  // namespace

void save_lora_adapters(const fs::path& dir, const TrainModel& m, const std::string& base_model) {
  const LoraSpec& spec = m.lora_spec();
  json targets = json::array();
  for (const std::string& t : spec.targets) targets.push_back(lora_module_name(t));
  // The fields PEFT's LoraConfig writes (defaults for the ones gptneo does not use).
  const json config = {{"peft_type", "LORA"},
                       {"task_type", "CAUSAL_LM"},
                       {"base_model_name_or_path", base_model},
                       {"r", spec.rank},
                       {"lora_alpha", spec.alpha},
                       {"lora_dropout", 0.0},
                       {"target_modules", targets},
                       {"bias", "none"},
                       {"fan_in_fan_out", false},
                       {"inference_mode", true},
                       {"init_lora_weights", true},
                       {"use_rslora", false},
                       {"use_dora", false},
                       {"modules_to_save", nullptr},
                       {"layers_to_transform", nullptr},
                       {"layers_pattern", nullptr},
                       {"rank_pattern", json::object()},
                       {"alpha_pattern", json::object()},
                       {"revision", nullptr}};
  fs::create_directories(dir);
  std::vector<TensorToWrite> tensors;
  const ParamSet& a = m.adapters();
  for (const ParamInfo& p : a.infos()) tensors.push_back({p.name, DType::F32, p.shape, a.value(p.offset)});
  write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  write_text_atomic(dir / kConfigFile, config.dump(2) + "\n");
}

LoraSpec read_lora_spec(const fs::path& dir) {
  const AdapterConfig c = read_adapter_config(dir);
  LoraSpec spec;
  spec.rank = c.rank;
  spec.alpha = c.alpha;
  spec.targets.clear();
  for (const std::string& m : c.modules) {
    const char* s = short_target(m);
    if (!s) throw Error(fmt::format("{}: target module \"{}\" is not a GPT-Neo projection", (dir / kConfigFile).string(), m));
    spec.targets.push_back(s);
  }
  return spec;
}

void load_lora_adapters(const fs::path& dir, TrainModel& m) {
  const SafetensorsFile file(dir / kWeightsFile);
  ParamSet& a = m.adapters();
  for (const ParamInfo& p : a.infos()) {
    const auto it = file.tensors().find(p.name);
    if (it == file.tensors().end())
      throw Error(fmt::format("adapter tensor '{}' is missing from {}", p.name, file.path().string()));
    const TensorView& t = it->second;
    if (t.shape != p.shape || !dtype_is_float(t.dtype))
      throw Error(fmt::format("adapter tensor '{}' in {} has shape {} ({}), expected {} floats", p.name,
                              file.path().string(), t.shape_string(), dtype_name(t.dtype), p.numel));
    convert_to_f32(t.dtype, t.data, p.numel, a.value(p.offset));
  }
}

void apply_lora_to_checkpoint(Checkpoint& ck, const fs::path& lora_dir) {
  const AdapterConfig c = read_adapter_config(lora_dir);
  const SafetensorsFile file(lora_dir / kWeightsFile);
  const std::string a_suffix = ".lora_A.weight";
  int merged = 0;
  for (const auto& [name, A] : file.tensors()) {
    if (!name.ends_with(a_suffix)) continue;
    std::string module = name.substr(0, name.size() - a_suffix.size());
    const std::string b_name = module + ".lora_B.weight";
    if (module.starts_with(kPrefix)) module = module.substr(std::string(kPrefix).size());
    std::string base = module + ".weight";
    if (!ck.has(base) && base.starts_with("transformer.") && ck.has(base.substr(12))) base = base.substr(12);
    if (!ck.has(base))
      throw Error(fmt::format("LoRA adapter {} in {} adapts '{}', which the model does not have", name,
                              file.path().string(), base));
    const auto bit = file.tensors().find(b_name);
    if (bit == file.tensors().end())
      throw Error(fmt::format("{} has {} but no {}", file.path().string(), name, b_name));
    const TensorView& B = bit->second;
    const TensorView& W = ck.get(base);
    if (W.shape.size() != 2 || A.shape.size() != 2 || B.shape.size() != 2 || A.shape[0] != c.rank ||
        B.shape[1] != c.rank || A.shape[1] != W.shape[1] || B.shape[0] != W.shape[0])
      throw Error(fmt::format("LoRA tensors {} {} and {} {} in {} do not fit '{}' {} at rank {}", name,
                              A.shape_string(), b_name, B.shape_string(), file.path().string(), base,
                              W.shape_string(), c.rank));
    const int64_t out = W.shape[0], in = W.shape[1], r = c.rank;
    std::vector<float> a(static_cast<size_t>(r * in)), b(static_cast<size_t>(out * r));
    convert_to_f32(A.dtype, A.data, a.size(), a.data());
    convert_to_f32(B.dtype, B.data, b.size(), b.data());
    for (float& v : b) v *= static_cast<float>(c.scale);
    auto w = std::shared_ptr<float[]>(new float[static_cast<size_t>(out * in)]);
    convert_to_f32(W.dtype, W.data, static_cast<size_t>(out * in), w.get());
    gemm(GemmArgs{Trans::No, Trans::No, out, in, r, r, in, in, true}, b.data(), a.data(), w.get(), nullptr);
    TensorView merged_view;
    merged_view.name = base;
    merged_view.dtype = DType::F32;
    merged_view.shape = W.shape;
    merged_view.data = reinterpret_cast<const uint8_t*>(w.get());
    merged_view.nbytes = static_cast<size_t>(out * in) * sizeof(float);
    merged_view.source = W.source + " + LoRA " + file.path().string();
    merged_view.keep_alive = std::shared_ptr<const void>(w, w.get());
    ck.add(std::move(merged_view));
    ++merged;
  }
  if (merged == 0) throw Error(fmt::format("{} holds no LoRA adapters (*.lora_A.weight)", file.path().string()));
}

}  // namespace gptneo::training
