// gptneo bench: speed of the model (prefill, decode), of the machine
// (--bandwidth) and of the tokenizer (--tokenize).
//
// Modes are branches of one subcommand, chosen by flag in run_bench(); a new
// mode (e.g. --train) adds its flag in add_bench_command and a branch there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/common.h"
#include "core/thread_pool.h"
#include "gptneo/error.h"
#include "gptneo/model.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"

namespace gptneo::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct BenchArgs {
  ModelOptions model;
  std::string random;
  int64_t prompt = 128, gen = 32, batch = 1;
  int64_t repeat = 3;  // prefills timed (the first, cold one is the time to first token)
  bool json = false;
  bool limits = false;
  bool bandwidth = false;
  int64_t bandwidth_mb = 1024;
  std::string tokenize_file;
  bool train = false;
  std::string train_shape = "4x256";
};

// ---- the machine's limits --------------------------------------------------------

// bf16_flops_s: the bf16 dot-product rate, 0 where the kernels have no
// bf16 dot products (bf16 weights are then widened and multiplied at the
// f32 FMA rate). int8_ops_s: the int8 dot-product rate (two operations per
// multiply-add), 0 where the kernels have none.
struct Limits {
  double read_bytes_s = 0, fma_flops_s = 0, bf16_flops_s = 0, int8_ops_s = 0;
};

Limits measure_limits(int threads, int64_t buffer_mb) {
  ThreadPool pool(threads);
  return {kernels::measure_read_bandwidth(pool, static_cast<size_t>(buffer_mb) << 20), kernels::measure_fma_peak(pool),
          kernels::measure_bf16_peak(pool), kernels::measure_int8_peak(pool)};
}

nlohmann::json or_null(double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); }

int thread_count(int requested) { return requested > 0 ? requested : ThreadPool::physical_cores(); }

void run_bandwidth(const BenchArgs& a) {
  const int threads = thread_count(a.model.threads);
  const Limits l = measure_limits(threads, a.bandwidth_mb);
  if (a.json) {
    print_json({{"read_bandwidth_bytes_s", l.read_bytes_s},
                {"f32_flops_s", l.fma_flops_s},
                {"bf16_flops_s", or_null(l.bf16_flops_s)},
                {"int8_ops_s", or_null(l.int8_ops_s)},
                {"isa", kernels::isa_name()},
                {"threads", threads}});
    return;
  }
  fmt::print("memory read bandwidth  {:.1f} GB/s  ({} threads, {} MiB buffer)\n", l.read_bytes_s / 1e9, threads,
             a.bandwidth_mb);
  fmt::print("f32 FMA peak           {:.1f} GFLOP/s  ({} kernels, register-only loop)\n", l.fma_flops_s / 1e9,
             kernels::isa_name());
  if (l.bf16_flops_s > 0)
    fmt::print("bf16 dot-product peak  {:.1f} GFLOP/s  (vdpbf16ps, register-only loop)\n", l.bf16_flops_s / 1e9);
  else
    fmt::print("bf16 dot-product peak  = f32 peak (the {} kernels have no bf16 dot products)\n", kernels::isa_name());
  if (l.int8_ops_s > 0)
    fmt::print("int8 dot-product peak  {:.1f} GOP/s    (vpdpbusd, register-only loop)\n", l.int8_ops_s / 1e9);
  else
    fmt::print("int8 dot-product peak  none (the {} kernels widen q8 / q4 prompts to f32)\n", kernels::isa_name());
}

// ---- memory --------------------------------------------------------------------------

// VmHWM (peak resident set) from /proc/self/status, in bytes.
size_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// Starts a new peak (Linux: writing 5 to clear_refs resets VmHWM).
void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

// ---- the model -----------------------------------------------------------------------

// The released GPT-Neo shapes (and a tiny one for tests), as config.json text.
std::string random_config(const std::string& name) {
  struct Shape {
    int hidden, layers, heads;
  };
  static const std::map<std::string, Shape> neo = {{"gpt-neo-tiny", {64, 2, 4}},
                                                   {"gpt-neo-125M", {768, 12, 12}},
                                                   {"gpt-neo-1.3B", {2048, 24, 16}},
                                                   {"gpt-neo-2.7B", {2560, 32, 20}}};
  if (const auto it = neo.find(name); it != neo.end()) {
    const Shape s = it->second;
    return fmt::format(R"({{"model_type": "gpt_neo", "vocab_size": 50257, "max_position_embeddings": 2048,
      "hidden_size": {}, "num_layers": {}, "num_heads": {}, "window_size": 256,
      "attention_types": [[["global", "local"], {}]], "activation_function": "gelu_new",
      "layer_norm_epsilon": 1e-5, "bos_token_id": 50256, "eos_token_id": 50256}})",
                       s.hidden, s.layers, s.heads, s.layers / 2);
  }
  if (name == "gpt-j-6B")
    return R"({"model_type": "gptj", "vocab_size": 50400, "n_positions": 2048, "n_embd": 4096, "n_layer": 28,
      "n_head": 16, "rotary_dim": 64, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
      "bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": false})";
  throw Error(fmt::format("unknown --random model \"{}\" (expected gpt-neo-125M, gpt-neo-1.3B, gpt-neo-2.7B, "
                          "gpt-j-6B or gpt-neo-tiny)",
                          name));
}

std::unique_ptr<Model> load_bench_model(const BenchArgs& a, std::string& label) {
  if (a.random.empty()) {
    label = a.model.resolve_model_dir().string();
    return a.model.load_model();
  }
  label = a.random + " (random weights)";
  const ModelConfig config = ModelConfig::parse(random_config(a.random), "--random " + a.random);
  LoadOptions options;
  options.threads = a.model.threads;
  options.kv_cache = a.model.kv_cache_format();
  if (!a.model.dtype.empty()) {
    const auto f = weight_format_from_name(a.model.dtype);
    if (!f) throw Error(fmt::format("unknown --dtype \"{}\" (expected f32, f16, bf16, q8 or q4)", a.model.dtype));
    options.weights = *f;
  }
  return Model::random(config, options);
}

// Bytes of weights read to decode one step: all of them except the
// position-embedding table, of which one row is read (GPT-Neo's wpe is kept
// as float32).
size_t weight_bytes_per_step(const Model& m) {
  const ModelConfig& c = m.config();
  size_t bytes = m.weight_bytes();
  if (c.model_type == "gpt_neo") bytes -= static_cast<size_t>((c.max_positions - 1) * c.hidden_size) * sizeof(float);
  return bytes;
}

// Multiply-adds × 2 of the weight matrices of the blocks for one token
// (attention scores and the logits of prompt tokens are not counted).
double block_flops_per_token(const ModelConfig& c) {
  const double h = static_cast<double>(c.hidden_size), inter = static_cast<double>(c.intermediate_size);
  return 2.0 * static_cast<double>(c.num_layers) * (4 * h * h + 2 * h * inter);
}

TokenId argmax(const float* row, int64_t n) { return static_cast<TokenId>(std::max_element(row, row + n) - row); }

void run_model_bench(const BenchArgs& a) {
  const int threads = thread_count(a.model.threads);
  Limits limits;
  if (a.limits) limits = measure_limits(threads, a.bandwidth_mb);

  const auto t_load = Clock::now();
  std::string label;
  std::unique_ptr<Model> model = load_bench_model(a, label);
  const double load_s = seconds_since(t_load);
  const ModelConfig& c = model->config();
  if (a.prompt + a.gen > c.max_positions)
    throw Error(fmt::format("--prompt {} + --gen {} exceed the model's {} positions", a.prompt, a.gen, c.max_positions));
  reset_peak_rss();

  // B sequences of random prompt tokens, prefilled in one forward pass.
  std::mt19937 rng(42);
  std::uniform_int_distribution<TokenId> token(0, static_cast<TokenId>(c.vocab_size - 1));
  std::vector<KVCache> caches;
  std::vector<std::vector<TokenId>> prompts(static_cast<size_t>(a.batch));
  for (auto& p : prompts) {
    for (int64_t i = 0; i < a.prompt; ++i) p.push_back(token(rng));
    caches.push_back(model->new_cache(a.prompt + a.gen));
  }
  std::vector<SequenceChunk> chunks;
  for (size_t s = 0; s < prompts.size(); ++s) chunks.push_back({&caches[s], prompts[s]});
  // The prefill is run `repeat` times into emptied caches. The first run is
  // the time to first token a user sees (it also grows the kernels' buffers
  // and touches the weights' pages); prefill tokens/s is the median run: a
  // single timing on a shared machine moved by 3x between runs.
  Logits logits;
  std::vector<double> prefills;
  for (int64_t r = 0; r < a.repeat; ++r) {
    for (auto& cache : caches) cache.clear();
    const auto t_prefill = Clock::now();
    logits = model->forward(chunks);
    prefills.push_back(seconds_since(t_prefill));
  }
  const double ttft_s = prefills.front();
  std::sort(prefills.begin(), prefills.end());
  const double prefill_s = prefills[prefills.size() / 2];

  // Decode: one token per sequence per step, the argmax of the last logits.
  std::vector<TokenId> next(static_cast<size_t>(a.batch));
  std::vector<double> steps;
  for (int64_t g = 0; g < a.gen; ++g) {
    for (size_t s = 0; s < next.size(); ++s) {
      next[s] = argmax(logits.row(static_cast<int64_t>(s)), c.vocab_size);
      chunks[s] = SequenceChunk{&caches[s], {&next[s], 1}};
    }
    const auto t = Clock::now();
    logits = model->forward(chunks);
    steps.push_back(seconds_since(t));
  }
  std::sort(steps.begin(), steps.end());
  const double median_step = steps.empty() ? 0 : steps[steps.size() / 2];

  const double prefill_tok_s = static_cast<double>(a.batch * a.prompt) / prefill_s;
  const double decode_tok_s = median_step > 0 ? static_cast<double>(a.batch) / median_step : 0;
  const size_t wbytes = weight_bytes_per_step(*model);
  size_t kv_bytes = 0;
  for (const auto& cache : caches) kv_bytes += cache.bytes();
  const size_t peak = peak_rss_bytes();
  // Fractions of the limits: decode against bandwidth / bytes per step,
  // prefill against the peak of the products it runs on (bf16 dot products
  // for bf16 weights where the kernels have them, int8 dot products for q8 /
  // q4 where prompts take them, else f32 FMAs).
  const double decode_limit = limits.read_bytes_s / static_cast<double>(wbytes) * static_cast<double>(a.batch);
  const double prefill_flops_s = prefill_tok_s * block_flops_per_token(c);
  const bool bf16_prefill = model->weight_format() == WeightFormat::BF16 && kernels::bf16_dot_products();
  const bool int8_prefill = is_quantized(model->weight_format()) && kernels::int8_products(a.prompt);
  double prefill_peak = limits.fma_flops_s;
  std::string peak_key = "f32", peak_name = "f32 FMA";
  if (bf16_prefill && limits.bf16_flops_s > 0) {
    prefill_peak = limits.bf16_flops_s;
    peak_key = "bf16";
    peak_name = "bf16 dot-product";
  } else if (int8_prefill && limits.int8_ops_s > 0) {
    prefill_peak = limits.int8_ops_s;
    peak_key = "int8";
    peak_name = "int8 dot-product";
  }

  if (a.json) {
    nlohmann::json j = {{"model", label},
                        {"weights", model->describe()},
                        {"batch", a.batch},
                        {"prompt", a.prompt},
                        {"gen", a.gen},
                        {"threads", threads},
                        {"load_s", load_s},
                        {"prefill_tok_s", prefill_tok_s},
                        {"ttft_s", ttft_s},
                        {"prefill_runs", a.repeat},
                        {"decode_tok_s", decode_tok_s},
                        {"decode_step_s", median_step},
                        {"weight_bytes_per_token", wbytes / a.batch},
                        {"weight_bytes_per_step", wbytes},
                        {"kv_cache_bytes", kv_bytes},
                        {"kv_cache_format", kv_cache_format_name(model->kv_cache_format())},
                        {"peak_rss_bytes", peak},
                        {"isa", kernels::isa_name()}};
    if (a.limits) {
      j["read_bandwidth_bytes_s"] = limits.read_bytes_s;
      j["f32_flops_s"] = limits.fma_flops_s;
      j["bf16_flops_s"] = or_null(limits.bf16_flops_s);
      j["int8_ops_s"] = or_null(limits.int8_ops_s);
      j["decode_fraction_of_bandwidth_limit"] = decode_tok_s / decode_limit;
      // (of the peak named by prefill_peak: "f32", "bf16" or "int8")
      j["prefill_peak"] = peak_key;
      j["prefill_fraction_of_fma_peak"] = prefill_flops_s / prefill_peak;
    }
    print_json(j);
    return;
  }
  fmt::print("model     {}\n          {}\n", label, model->describe());
  fmt::print("kernels   {}, {} threads\n", kernels::isa_name(), threads);
  fmt::print("load      {:.2f} s\n", load_s);
  fmt::print("prefill   {} × {} tokens in {:.3f} s (median of {} runs): {:.1f} tokens/s (time to first token, "
             "the first run: {:.3f} s)\n",
             a.batch, a.prompt, prefill_s, a.repeat, prefill_tok_s, ttft_s);
  fmt::print("decode    {} × {} tokens: {:.2f} tokens/s (median step {:.2f} ms)\n", a.batch, a.gen, decode_tok_s,
             median_step * 1e3);
  fmt::print("weights   {:.1f} MB read per decode step\n", wbytes / 1e6);
  fmt::print("memory    peak resident {:.1f} MB while running (weights {:.1f} MB, KV cache {:.1f} MB in {})\n",
             peak / 1e6, model->weight_bytes() / 1e6, kv_bytes / 1e6, kv_cache_format_name(model->kv_cache_format()));
  if (a.limits) {
    fmt::print("limits    read bandwidth {:.1f} GB/s, f32 FMA peak {:.1f} GFLOP/s", limits.read_bytes_s / 1e9,
               limits.fma_flops_s / 1e9);
    if (limits.bf16_flops_s > 0) fmt::print(", bf16 dot-product peak {:.1f} GFLOP/s", limits.bf16_flops_s / 1e9);
    if (limits.int8_ops_s > 0) fmt::print(", int8 dot-product peak {:.1f} GOP/s", limits.int8_ops_s / 1e9);
    fmt::print(" (measured in this run)\n");
    fmt::print("          decode at {:.0f}% of bandwidth / weight bytes ({:.2f} tokens/s)\n",
               100 * decode_tok_s / decode_limit, decode_limit);
    fmt::print("          prefill at {:.0f}% of the {} peak ({:.1f} {} in the weight products)\n",
               100 * prefill_flops_s / prefill_peak, peak_name, prefill_flops_s / 1e9,
               peak_key == "int8" ? "GOP/s" : "GFLOP/s");
  }
}

// ---- the tokenizer ---------------------------------------------------------------------

void run_tokenize_bench(const BenchArgs& a) {
  const std::string text = read_text_file(a.tokenize_file);
  const Tokenizer tok = a.model.load_tokenizer();
  const int threads = thread_count(a.model.threads);
  const double mb = static_cast<double>(text.size()) / 1e6;

  auto t = Clock::now();
  const std::vector<TokenId> ids = tok.encode(text);
  const double encode_s = seconds_since(t);
  t = Clock::now();
  const std::vector<TokenId> ids_parallel = tok.encode_parallel(text, threads);
  const double encode_parallel_s = seconds_since(t);
  if (ids_parallel != ids) throw Error("encode_parallel gave other ids than encode: a tokenizer bug");
  t = Clock::now();
  const std::string back = tok.decode(ids);
  const double decode_s = seconds_since(t);
  if (back != text) throw Error("decode(encode(text)) differs from the text: a tokenizer bug");

  if (a.json) {
    print_json({{"bytes", text.size()},
                {"tokens", ids.size()},
                {"encode_mb_s", mb / encode_s},
                {"encode_parallel_mb_s", mb / encode_parallel_s},
                {"threads", threads},
                {"decode_mb_s", mb / decode_s}});
    return;
  }
  fmt::print("text      {} ({:.1f} MB, {} tokens)\n", a.tokenize_file, mb, ids.size());
  fmt::print("encode    {:.1f} MB/s on 1 thread, {:.1f} MB/s on {} threads (same ids)\n", mb / encode_s,
             mb / encode_parallel_s, threads);
  fmt::print("decode    {:.1f} MB/s\n", mb / decode_s);
}

void run_bench(const BenchArgs& a) {
  if (a.train) {
    const std::string name = a.random.empty() ? "gpt-neo-125M" : a.random;
    return run_train_bench(name, random_config(name), thread_count(a.model.threads), a.train_shape, a.json);
  }
  if (a.bandwidth) return run_bandwidth(a);
  if (!a.tokenize_file.empty()) return run_tokenize_bench(a);
  if (a.random.empty() && a.model.model_dir.empty())
    throw Error("bench needs a model: -m DIR or --random NAME (or --bandwidth, --tokenize FILE)");
  run_model_bench(a);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure speed: prefill and decode tokens/s of a model, the machine's "
                                              "limits (--bandwidth), the tokenizer (--tokenize FILE)");
  args->model.add_to(*cmd);
  cmd->add_option("--random", args->random,
                  "a model with random weights at released shapes: gpt-neo-125M, gpt-neo-1.3B, gpt-neo-2.7B, gpt-j-6B");
  cmd->add_option("--prompt", args->prompt, "prompt tokens per sequence")->check(CLI::PositiveNumber)->default_val(128);
  cmd->add_option("--gen", args->gen, "tokens decoded per sequence")->check(CLI::NonNegativeNumber)->default_val(32);
  cmd->add_option("--repeat", args->repeat, "prefills timed; tokens/s is their median, the first is the time to "
                                           "first token")
      ->check(CLI::PositiveNumber)
      ->default_val(3);
  cmd->add_option("--batch", args->batch, "sequences decoded together")->check(CLI::PositiveNumber)->default_val(1);
  cmd->add_flag("--limits", args->limits, "also measure the machine's limits and print the fractions reached");
  cmd->add_flag("--bandwidth", args->bandwidth, "measure memory read bandwidth and FMA peak only");
  cmd->add_option("--bandwidth-mb", args->bandwidth_mb, "size of the buffer read to measure bandwidth")
      ->check(CLI::PositiveNumber)
      ->default_val(1024);
  cmd->add_option("--tokenize", args->tokenize_file, "measure tokenizer encode/decode speed on this text file");
  cmd->add_flag("--train", args->train, "measure training steps/s (forward, backward, AdamW) of --random NAME "
                                        "(default gpt-neo-125M)");
  cmd->add_option("--train-shape", args->train_shape, "BATCHxSEQ of the --train step")->default_val("4x256");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace gptneo::cli
