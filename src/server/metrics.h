// The server's metrics in the Prometheus text format (GET /metrics).
// Counters and histograms are updated by the HTTP threads and the scheduler;
// gauges are set by the scheduler after each step.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gptneo::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // "# HELP", "# TYPE" and the _bucket/_sum/_count lines.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), the last for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What the scheduler reports after each step.
struct SchedulerGauges {
  int64_t queued_requests = 0;   // waiting for a slot or KV memory
  int64_t running_requests = 0;  // prompts being prefilled or decoded
  int64_t active_sequences = 0;  // sequences in the batch
  int64_t slots = 0;             // --parallel
  int64_t kv_bytes = 0;          // KV memory reserved by running sequences
  int64_t kv_budget_bytes = 0;
  int64_t steps = 0;             // batched forward passes so far
  int64_t prompt_cache_entries = 0;
  int64_t prompt_cache_bytes = 0;
  int64_t prompt_cache_lookups = 0;
  int64_t prompt_cache_hits = 0;
  int64_t prompt_cache_hit_tokens = 0;
};

class Metrics {
 public:
  Metrics();

  // One answered HTTP request; `path` is folded into a known endpoint label.
  void count_request(const std::string& path, int status);
  void count_tokens(int64_t prompt, int64_t cached, int64_t generated);
  void count_cancelled();
  void set_model_loaded(bool loaded);
  void set_gauges(const SchedulerGauges& g);

  Histogram time_to_first_token;   // seconds from arrival to the first generated token
  Histogram time_per_output_token; // seconds between two tokens of a sequence
  Histogram request_duration;      // seconds from arrival to the last byte answered
  Histogram batch_size;            // sequences in each step's batch

  std::string render() const;

  // The endpoint label of a request path (unknown paths are "other").
  static std::string endpoint_label(const std::string& path);

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status)
  uint64_t prompt_tokens_ = 0, cached_prompt_tokens_ = 0, generated_tokens_ = 0, cancelled_ = 0;
  bool model_loaded_ = false;
  SchedulerGauges gauges_;
};

}  // namespace gptneo::server
