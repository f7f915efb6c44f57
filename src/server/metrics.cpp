#include "server/metrics.h"

#include <array>
#include <cmath>

#include <fmt/format.h>

namespace gptneo::server {

namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, const std::string& name, const char* type, const std::string& help, double value) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, number(value));
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard lock(mutex_);
  size_t b = 0;
  while (b < bounds_.size() && value > bounds_[b]) ++b;
  ++counts_[b];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mutex_);
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, number(bounds_[b]), cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, number(sum_), name, count_);
}

Metrics::Metrics()
    : time_to_first_token({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      time_per_output_token({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      request_duration({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      batch_size({1, 2, 4, 8, 16, 32, 64, 128}) {}

std::string Metrics::endpoint_label(const std::string& path) {
  static const std::array known = {"/", "/health", "/metrics", "/v1/models", "/v1/completions",
                                   "/v1/chat/completions", "/tokenize", "/detokenize"};
  for (const char* k : known)
    if (path == k) return k;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint_label(path), status}];
}

void Metrics::count_tokens(int64_t prompt, int64_t cached, int64_t generated) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  cached_prompt_tokens_ += static_cast<uint64_t>(cached);
  generated_tokens_ += static_cast<uint64_t>(generated);
}

void Metrics::count_cancelled() {
  std::lock_guard lock(mutex_);
  ++cancelled_;
}

void Metrics::set_model_loaded(bool loaded) {
  std::lock_guard lock(mutex_);
  model_loaded_ = loaded;
}

void Metrics::set_gauges(const SchedulerGauges& g) {
  std::lock_guard lock(mutex_);
  gauges_ = g;
}

std::string Metrics::render() const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    const SchedulerGauges& g = gauges_;
    header(out, "gptneo_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (const auto& [key, n] : requests_)
      out += fmt::format("gptneo_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
    sample(out, "gptneo_prompt_tokens_total", "counter", "Prompt tokens of finished requests (cached ones included).",
           static_cast<double>(prompt_tokens_));
    sample(out, "gptneo_prompt_tokens_cached_total", "counter", "Prompt tokens taken from the prompt cache.",
           static_cast<double>(cached_prompt_tokens_));
    sample(out, "gptneo_generated_tokens_total", "counter", "Tokens generated.", static_cast<double>(generated_tokens_));
    sample(out, "gptneo_requests_cancelled_total", "counter", "Requests whose client went away before the end.",
           static_cast<double>(cancelled_));
    sample(out, "gptneo_model_loaded", "gauge", "1 once the model is loaded and requests are served.",
           model_loaded_ ? 1 : 0);
    sample(out, "gptneo_queue_length", "gauge", "Prompts waiting for a slot or KV-cache memory.",
           static_cast<double>(g.queued_requests));
    sample(out, "gptneo_running_requests", "gauge", "Prompts being prefilled or decoded.",
           static_cast<double>(g.running_requests));
    sample(out, "gptneo_active_sequences", "gauge", "Sequences in the running batch.",
           static_cast<double>(g.active_sequences));
    sample(out, "gptneo_slots", "gauge", "Most sequences decoded at once (--parallel).", static_cast<double>(g.slots));
    sample(out, "gptneo_kv_cache_bytes", "gauge", "KV-cache memory reserved by running sequences.",
           static_cast<double>(g.kv_bytes));
    sample(out, "gptneo_kv_cache_budget_bytes", "gauge", "KV-cache memory budget of running sequences.",
           static_cast<double>(g.kv_budget_bytes));
    sample(out, "gptneo_kv_cache_usage_ratio", "gauge", "kv_cache_bytes / kv_cache_budget_bytes.",
           g.kv_budget_bytes > 0 ? static_cast<double>(g.kv_bytes) / static_cast<double>(g.kv_budget_bytes) : 0.0);
    sample(out, "gptneo_steps_total", "counter", "Batched forward passes run.", static_cast<double>(g.steps));
    sample(out, "gptneo_prompt_cache_entries", "gauge", "Sequences kept in the prompt cache.",
           static_cast<double>(g.prompt_cache_entries));
    sample(out, "gptneo_prompt_cache_bytes", "gauge", "Memory held by the prompt cache.",
           static_cast<double>(g.prompt_cache_bytes));
    sample(out, "gptneo_prompt_cache_lookups_total", "counter", "Prompts looked up in the prompt cache.",
           static_cast<double>(g.prompt_cache_lookups));
    sample(out, "gptneo_prompt_cache_hits_total", "counter", "Lookups that reused a cached prefix.",
           static_cast<double>(g.prompt_cache_hits));
    sample(out, "gptneo_prompt_cache_hit_tokens_total", "counter", "Prompt tokens reused from the prompt cache.",
           static_cast<double>(g.prompt_cache_hit_tokens));
    sample(out, "gptneo_prompt_cache_hit_rate", "gauge", "prompt_cache_hits_total / prompt_cache_lookups_total.",
           g.prompt_cache_lookups > 0
               ? static_cast<double>(g.prompt_cache_hits) / static_cast<double>(g.prompt_cache_lookups)
               : 0.0);
  }
  time_to_first_token.render(out, "gptneo_time_to_first_token_seconds",
                             "Time from a request's arrival to its first generated token.");
  time_per_output_token.render(out, "gptneo_time_per_output_token_seconds",
                               "Time between two generated tokens of one sequence.");
  request_duration.render(out, "gptneo_request_duration_seconds",
                          "Time from a generation request's arrival to the end of its answer.");
  batch_size.render(out, "gptneo_batch_sequences", "Sequences in each batched forward pass.");
  return out;
}

}  // namespace gptneo::server
