// The training loop behind gptneo::train(): set-up (model, data, resume),
// then for each step: the ranks' shares of the global batch in micro-steps,
// all-reduce of the gradients, clipping, AdamW, and on rank 0 the metrics,
// the progress line, evaluation and checkpoints.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "core/thread_pool.h"
#include "gptneo/error.h"
#include "gptneo/train.h"
#include "io/checkpoint.h"
#include "train/data.h"
#include "train/distributed.h"
#include "train/files.h"
#include "train/gemm.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/run_state.h"

namespace gptneo {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using training::Comm;

void check_options(const TrainOptions& o, const Comm& comm) {
  if (o.init_dir.empty() == o.config_path.empty())
    throw Error("give exactly one of --init DIR (fine-tune a model) or --config CONFIG.json (train from scratch)");
  if (o.data.empty()) throw Error("no training data: --data PATH...");
  if (o.out.empty()) throw Error("no output folder: --out DIR");
  if ((o.steps > 0) == (o.tokens > 0)) throw Error("give exactly one of --steps N or --tokens N");
  if (o.batch <= 0 || o.seq <= 0 || o.accum <= 0) throw Error("--batch, --seq and --accum must be positive");
  const int64_t parts = o.accum * comm.size();
  if (o.batch % parts != 0)
    throw Error(fmt::format("--batch {} must be a multiple of --accum {} × {} MPI ranks", o.batch, o.accum,
                            comm.size()));
  if (o.lr <= 0) throw Error("--lr must be positive");
  if (o.val_fraction < 0 || o.val_fraction >= 1) throw Error("--val-fraction must be in [0, 1)");
  if (o.lora_rank < 0) throw Error("--lora-rank must be positive");
}

// Threads per process: given, or the physical cores shared among the ranks
// of this machine.
int threads_per_rank(int requested) {
  if (requested > 0) return requested;
  int local = 1;
  if (const char* s = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) local = std::max(1, std::atoi(s));
  return std::max(1, ThreadPool::physical_cores() / local);
}

struct Setup {
  ModelConfig config;
  std::string config_json;
  fs::path files_dir;  // tokenizer (and generation config) files copied into checkpoints
  std::optional<Tokenizer> tokenizer;
};

Setup load_setup(const TrainOptions& o) {
  Setup s;
  if (!o.init_dir.empty()) {
    s.config = ModelConfig::load(o.init_dir);
    s.config_json = s.config.json;
  } else {
    std::ifstream in(o.config_path);
    if (!in) throw Error(fmt::format("cannot read the model config {}", o.config_path.string()));
    std::stringstream ss;
    ss << in.rdbuf();
    s.config_json = ss.str();
    s.config = ModelConfig::parse(s.config_json, o.config_path.string());
  }
  fs::path tok = o.tokenizer;
  if (tok.empty()) tok = !o.init_dir.empty() ? o.init_dir : o.config_path.parent_path();
  if (fs::is_directory(tok) ? Tokenizer::exists_in(tok) : fs::exists(tok)) {
    s.tokenizer = Tokenizer::load(tok);
    s.files_dir = fs::is_directory(tok) ? tok : tok.parent_path();
  }
  if (!o.init_dir.empty() && Tokenizer::exists_in(o.init_dir)) s.files_dir = o.init_dir;
  return s;
}

// Reads the data on rank 0 first (which writes the token caches), then on
// the other ranks (which find them).
training::RowSet load_rows(const std::vector<fs::path>& paths, const Setup& s, const TrainOptions& o, Comm& comm,
                        int threads, std::string* summary) {
  bool all_token_files = true;
  for (const fs::path& p : paths) {
    std::vector<int32_t> probe;
    all_token_files &= fs::is_regular_file(p) && training::read_token_file(p, 0, probe);
  }
  if (!s.tokenizer && !all_token_files)
    throw Error("no tokenizer for the text data: the model folder has none; give --tokenizer PATH");
  training::TokenStream stream;
  for (int turn = 0; turn < 2; ++turn) {
    if ((turn == 0) == comm.is_root()) {
      if (s.tokenizer) {
        stream = training::load_token_stream(paths, *s.tokenizer, {threads, o.cache_tokens});
      } else {
        for (const fs::path& p : paths) {
          std::vector<int32_t> ids;
          training::read_token_file(p, 0, ids);
          stream.tokens.insert(stream.tokens.end(), ids.begin(), ids.end());
        }
      }
    }
    comm.barrier();
  }
  for (const int32_t id : stream.tokens)
    if (id < 0 || id >= s.config.vocab_size)
      throw Error(fmt::format("the data holds token id {}, outside the model's vocabulary of {}", id,
                              s.config.vocab_size));
  if (summary)
    *summary = fmt::format("{} tokens ({} documents{}{})", stream.tokens.size(), stream.documents,
                           stream.cached_paths ? ", from the token cache" : "",
                           stream.skipped_files ? fmt::format(", {} non-text files skipped", stream.skipped_files)
                                                : "");
  return training::RowSet(std::move(stream.tokens), o.seq);
}

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return fmt::format("{}h{:02}m", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
}

// Keeps the metrics lines of steps up to `step` (after a resume, the lines a
// crashed run wrote past its last checkpoint would otherwise repeat).
void truncate_metrics(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const json::exception&) {
      break;  // a torn last line
    }
  }
  in.close();
  training::write_text_atomic(path, kept);
}

class Trainer {
 public:
  explicit Trainer(const TrainOptions& o) : o_(o), comm_(Comm::world()) {}
  TrainResult run();

 private:
  double evaluate();
  void log(const json& line);
  void fill_batch(const std::vector<int64_t>& rows, const training::RowSet& set, std::vector<int32_t>& tokens,
                  std::vector<int32_t>& targets) const;

  const TrainOptions& o_;
  Comm& comm_;
  Setup setup_;
  std::unique_ptr<training::TrainModel> model_;
  training::RowSet train_rows_, val_rows_;
  std::ofstream metrics_;
};

void Trainer::fill_batch(const std::vector<int64_t>& rows, const training::RowSet& set, std::vector<int32_t>& tokens,
                         std::vector<int32_t>& targets) const {
  const int64_t T = set.seq();
  tokens.resize(rows.size() * static_cast<size_t>(T));
  targets.resize(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) set.row(rows[i], tokens.data() + i * T, targets.data() + i * T);
}

// Mean next-token loss over the first eval_rows validation rows, split over ranks.
double Trainer::evaluate() {
  const int64_t n = std::min(o_.eval_rows, val_rows_.rows());
  if (n <= 0) return -1;
  const int64_t micro = o_.batch / (o_.accum * comm_.size());
  double sums[2] = {0, 0};  // loss, targets
  std::vector<int64_t> mine;
  for (int64_t r = comm_.rank(); r < n; r += comm_.size()) mine.push_back(r);
  std::vector<int32_t> tokens, targets;
  for (size_t i = 0; i < mine.size(); i += static_cast<size_t>(micro)) {
    const std::vector<int64_t> rows(mine.begin() + static_cast<std::ptrdiff_t>(i),
                                    mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), i + micro)));
    fill_batch(rows, val_rows_, tokens, targets);
    sums[0] += model_->step(tokens.data(), targets.data(), static_cast<int64_t>(rows.size()), o_.seq, 1.0f, false);
    sums[1] += static_cast<double>(tokens.size());
  }
  comm_.allreduce_sum(sums, 2);
  return sums[0] / sums[1];
}

void Trainer::log(const json& line) {
  if (!comm_.is_root()) return;
  const std::string text = line.dump();
  metrics_ << text << "\n";
  metrics_.flush();
  if (o_.on_metrics) o_.on_metrics(text);
}

TrainResult Trainer::run() {
  check_options(o_, comm_);
  if (!comm_.is_root()) Progress::set_enabled(false);  // one progress line per job
  const int threads = threads_per_rank(o_.threads);
  setup_ = load_setup(o_);
  training::set_gemm_bf16_operands(o_.bf16);

  // ---- data
  std::string data_summary, val_summary;
  train_rows_ = load_rows(o_.data, setup_, o_, comm_, threads, &data_summary);
  if (!o_.val_data.empty())
    val_rows_ = load_rows(o_.val_data, setup_, o_, comm_, threads, &val_summary);
  else
    val_rows_ = train_rows_.split_tail(o_.val_fraction);
  if (train_rows_.rows() <= 0)
    throw Error(fmt::format("not enough training data: {} makes no row of --seq {} tokens", data_summary, o_.seq));
  const int64_t steps = o_.steps > 0 ? o_.steps : (o_.tokens + o_.batch * o_.seq - 1) / (o_.batch * o_.seq);

  // ---- model
  model_ = std::make_unique<training::TrainModel>(setup_.config, threads);
  if (!o_.init_dir.empty()) {
    model_->load(Checkpoint::open(o_.init_dir));
  } else {
    double std_dev = 0.02;
    try {
      std_dev = json::parse(setup_.config_json).value("initializer_range", 0.02);
    } catch (const json::exception&) {
    }
    model_->init_random(o_.seed, std_dev);
  }
  if (o_.lora_rank > 0) {
    training::LoraSpec spec;
    spec.rank = o_.lora_rank;
    spec.alpha = o_.lora_alpha;
    spec.targets = training::parse_lora_targets(o_.lora_targets);
    model_->add_lora(spec, o_.seed);
  }
  training::ParamSet& params = model_->trainable();
  training::AdamW opt(params.size());
  const training::AdamWConfig adam{o_.beta1, o_.beta2, o_.eps, o_.weight_decay};
  training::Schedule schedule;
  schedule.kind = training::Schedule::parse(o_.schedule);
  schedule.lr = o_.lr;
  schedule.min_lr = o_.min_lr >= 0 ? o_.min_lr : o_.lr / 10;
  schedule.warmup = o_.warmup;
  schedule.total = steps;

  // ---- resume
  training::RunState state;
  training::Shuffler shuffler(train_rows_.rows(), o_.seed);
  const std::optional<fs::path> last = training::latest_checkpoint(o_.out);
  if (o_.resume && last) {
    state = training::load_checkpoint(*last, *model_, opt);
    shuffler.seek(state.data_epoch, state.data_index);
  } else if (last && !o_.resume) {
    throw Error(fmt::format("{} already holds checkpoints ({}); pass --resume to continue, or another --out",
                            o_.out.string(), last->filename().string()));
  }
  if (comm_.is_root()) {
    fs::create_directories(o_.out);
    if (state.step > 0) truncate_metrics(o_.out / "metrics.jsonl", state.step);
    metrics_.open(o_.out / "metrics.jsonl", std::ios::app);
    if (!metrics_) throw Error(fmt::format("cannot write {}", (o_.out / "metrics.jsonl").string()));
  }
  const training::SaveSpec save_spec{setup_.config_json, setup_.files_dir,
                                  o_.init_dir.empty() ? o_.config_path.string() : o_.init_dir.string()};

  const int64_t per_rank = o_.batch / comm_.size(), micro = per_rank / o_.accum;
  if (comm_.is_root()) {
    const ModelConfig& c = setup_.config;
    int64_t n_params = static_cast<int64_t>(model_->params().size());
    std::string msg = fmt::format(
        "train: {} layers, {} hidden, {:.2f} M parameters{}; {} ({} threads each)\n"
        "train: data {}: {} training rows of {} tokens, {} validation rows{}\n"
        "train: {} steps × {} rows ({} tokens/step), {} micro-step(s) of {} rows per rank; activations {:.1f} MB{}\n",
        c.num_layers, c.hidden_size, n_params / 1e6,
        model_->has_lora() ? fmt::format(", LoRA rank {} on {} ({:.3f} M trainable)", o_.lora_rank, o_.lora_targets,
                                         static_cast<double>(params.size()) / 1e6)
                           : "",
        comm_.describe(), threads, data_summary, train_rows_.rows(), o_.seq, val_rows_.rows(),
        val_summary.empty() ? "" : " (" + val_summary + ")", steps, o_.batch, o_.batch * o_.seq, o_.accum, micro,
        model_->activation_bytes(micro, o_.seq, o_.recompute) / 1e6, o_.recompute ? " (--recompute)" : "");
    if (state.step > 0) msg += fmt::format("train: resuming from {} (step {})\n", last->string(), state.step);
    std::fputs(msg.c_str(), stderr);
  }

  TrainResult result;
  result.steps = state.step;
  if (state.step == 0 && o_.eval_rows > 0 && val_rows_.rows() > 0) {
    const double v = evaluate();
    state.val_loss = v;
    log({{"step", 0}, {"loss", nullptr}, {"lr", 0.0}, {"tokens_per_s", 0.0}, {"val_loss", v}, {"val_ppl", std::exp(v)}});
    if (comm_.is_root()) std::fprintf(stderr, "train: step 0: validation loss %.4f, perplexity %.2f\n", v, std::exp(v));
  }

  const int64_t end = o_.stop_after > 0 ? std::min(steps, state.step + o_.stop_after) : steps;
  Progress progress("train", steps, "steps");
  progress.update(state.step);
  const auto t_run = Clock::now();
  int64_t tokens_this_run = 0;
  std::vector<int32_t> tokens, targets;
  std::vector<int64_t> global_rows(static_cast<size_t>(o_.batch));
  fs::path last_saved;
  std::string last_extra;
  while (state.step < end) {
    const auto t_step = Clock::now();
    const double lr = schedule.at(state.step);
    for (auto& r : global_rows) r = shuffler.next();
    params.zero_grads();
    const float scale = 1.0f / static_cast<float>(o_.batch * o_.seq);
    double loss = 0;
    for (int64_t a = 0; a < o_.accum; ++a) {
      const auto first = global_rows.begin() + comm_.rank() * per_rank + a * micro;
      fill_batch(std::vector<int64_t>(first, first + micro), train_rows_, tokens, targets);
      loss += model_->step(tokens.data(), targets.data(), micro, o_.seq, scale, true, o_.recompute);
    }
    comm_.allreduce_sum(params.grads.data(), params.grads.size());
    comm_.allreduce_sum(&loss, 1);
    const double norm = training::grad_norm(params);
    training::clip_grads(params, norm, o_.grad_clip);
    opt.step(params, lr, adam, model_->pool());
    ++state.step;
    state.tokens_seen += o_.batch * o_.seq;
    tokens_this_run += o_.batch * o_.seq;
    state.data_epoch = shuffler.epoch();
    state.data_index = shuffler.index();
    state.loss = loss;
    const double step_s = std::chrono::duration<double>(Clock::now() - t_step).count();
    state.elapsed_s += step_s;
    const double run_s = std::chrono::duration<double>(Clock::now() - t_run).count();
    const double tps = static_cast<double>(tokens_this_run) / run_s;

    json line = {{"step", state.step},     {"loss", loss},         {"lr", lr},
                 {"grad_norm", norm},      {"tokens", state.tokens_seen}, {"tokens_per_s", tps},
                 {"step_s", step_s},       {"elapsed_s", state.elapsed_s}};
    const bool last_step = state.step == end;
    const bool eval_now = val_rows_.rows() > 0 && o_.eval_rows > 0 &&
                          ((o_.eval_every > 0 && state.step % o_.eval_every == 0) || last_step);
    std::string extra = fmt::format("loss {:.4f}", loss);
    if (eval_now) {
      state.val_loss = evaluate();
      line["val_loss"] = state.val_loss;
      line["val_ppl"] = std::exp(state.val_loss);
    }
    if (state.val_loss >= 0) extra += fmt::format(" | val {:.4f} (ppl {:.2f})", state.val_loss, std::exp(state.val_loss));
    extra += fmt::format(" | lr {:.2e} | {:.0f} tok/s", lr, tps);
    log(line);
    if (comm_.is_root()) progress.update(state.step, extra);
    last_extra = extra;
    if ((o_.save_every > 0 && state.step % o_.save_every == 0) || last_step) {
      if (comm_.is_root()) last_saved = training::save_checkpoint(o_.out, *model_, opt, state, save_spec);
      comm_.barrier();
    }
  }
  if (comm_.is_root()) progress.finish(last_extra);
  result.steps = state.step;
  result.loss = state.loss;
  result.val_loss = state.val_loss;
  result.seconds = std::chrono::duration<double>(Clock::now() - t_run).count();
  result.tokens_per_s = result.seconds > 0 ? static_cast<double>(tokens_this_run) / result.seconds : 0;
  result.checkpoint = last_saved.empty() && last ? *last : last_saved;
  if (comm_.is_root() && !last_saved.empty())
    std::fprintf(stderr, "train: %lld steps in %s (%.0f tokens/s); checkpoint %s\n",
                 static_cast<long long>(state.step), format_duration(result.seconds).c_str(), result.tokens_per_s,
                 last_saved.string().c_str());
  return result;
}

}  // namespace

TrainResult train(const TrainOptions& options) {
  Trainer t(options);
  return t.run();
}

}  // namespace gptneo
