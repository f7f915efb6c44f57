#include "train/run_state.h"

#include <regex>

#include <fmt/format.h>

#include "gptneo/convert.h"
#include "gptneo/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/files.h"
#include "train/lora.h"

namespace gptneo::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
}  // namespace

json RunState::to_json() const {
  return {{"step", step},           {"tokens_seen", tokens_seen}, {"data_epoch", data_epoch},
          {"data_index", data_index}, {"loss", loss},             {"val_loss", val_loss},
          {"elapsed_s", elapsed_s}};
}

RunState RunState::from_json(const json& j, const std::string& where) {
  RunState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.data_epoch = j.at("data_epoch").get<int64_t>();
    s.data_index = j.at("data_index").get<int64_t>();
    s.loss = j.value("loss", 0.0);
    s.val_loss = j.value("val_loss", -1.0);
    s.elapsed_s = j.value("elapsed_s", 0.0);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: missing or bad field ({})", where, e.what()));
  }
  return s;
}

fs::path save_checkpoint(const fs::path& out, const TrainModel& model, const AdamW& opt, const RunState& state,
                         const SaveSpec& spec) {
  const fs::path final_dir = out / fmt::format("step-{}", state.step);
  const fs::path tmp = out / fmt::format(".step-{}.tmp", state.step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  if (model.has_lora()) {
    save_lora_adapters(tmp, model, spec.base_model);
  } else {
    SaveOptions o;
    o.copy_files_from = spec.copy_files_from;
    save_model(tmp, spec.config_json, model.params().tensors(), o);
  }
  const auto n = static_cast<int64_t>(opt.m.size());
  write_safetensors(tmp / kOptimizerFile,
                    {{"exp_avg", DType::F32, {n}, opt.m.data()}, {"exp_avg_sq", DType::F32, {n}, opt.v.data()}},
                    {{"step", std::to_string(opt.t)}});
  // Written last: its presence marks a complete checkpoint.
  write_text_atomic(tmp / kStateFile, state.to_json().dump(2) + "\n");
  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  return final_dir;
}

std::optional<fs::path> latest_checkpoint(const fs::path& out) {
  if (!fs::is_directory(out)) return std::nullopt;
  static const std::regex name("step-([0-9]+)");
  std::optional<fs::path> best;
  int64_t best_step = -1;
  for (const auto& e : fs::directory_iterator(out)) {
    std::smatch m;
    const std::string f = e.path().filename().string();
    if (!e.is_directory() || !std::regex_match(f, m, name) || !fs::exists(e.path() / kStateFile)) continue;
    const int64_t s = std::stoll(m[1].str());
    if (s > best_step) best_step = s, best = e.path();
  }
  return best;
}

RunState load_checkpoint(const fs::path& dir, TrainModel& model, AdamW& opt) {
  if (model.has_lora())
    load_lora_adapters(dir, model);
  else
    model.load(Checkpoint::open(dir));
  const SafetensorsFile f(dir / kOptimizerFile);
  const size_t n = model.trainable().size();
  for (const char* name : {"exp_avg", "exp_avg_sq"}) {
    const auto it = f.tensors().find(name);
    if (it == f.tensors().end() || it->second.dtype != DType::F32 || it->second.numel() != static_cast<int64_t>(n))
      throw Error(fmt::format("{}: '{}' is missing or does not match the {} trainable parameters", f.path().string(),
                              name, n));
  }
  opt.m.resize(n), opt.v.resize(n);
  convert_to_f32(DType::F32, f.tensors().at("exp_avg").data, n, opt.m.data());
  convert_to_f32(DType::F32, f.tensors().at("exp_avg_sq").data, n, opt.v.data());
  const auto meta = f.metadata().find("step");
  if (meta == f.metadata().end()) throw Error(fmt::format("{}: no optimizer step in its metadata", f.path().string()));
  opt.t = std::stoll(meta->second);
  return RunState::from_json(read_json_file(dir / kStateFile), (dir / kStateFile).string());
}

}  // namespace gptneo::training
