// Continuous batching: one thread runs the model for every request at once.
//
// Each step builds ONE batch: the next token of every decoding sequence plus
// a bounded number of prompt tokens of requests still in prefill (chunked
// prefill, so a long prompt never stalls the others for long), runs one
// forward pass, then steps each sequence's SequenceDecoder on its logits row.
// Requests join between steps when a slot and KV-cache memory are free (else
// they wait in a bounded queue: a full queue is a 429) and leave as soon as
// they finish or their client goes away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "gptneo/generate.h"
#include "gptneo/model.h"
#include "gptneo/tokenizer.h"
#include "core/thread_pool.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/prompt_cache.h"
#include "server/request.h"

namespace gptneo::server {

struct SchedulerOptions {
  int parallel = 8;                       // most sequences in one batch
  int64_t context = 0;                    // positions per sequence (0: the model's max_positions)
  size_t kv_budget_bytes = 0;             // KV memory of running sequences (0: `parallel` full-context caches)
  int queue_size = 64;                    // most prompts waiting for a slot
  int64_t prefill_tokens_per_step = 128;  // prompt tokens run per step, over all prefilling requests
  size_t prompt_cache_bytes = 64u << 20;  // 0: no prompt cache
  int64_t prompt_cache_min_tokens = 8;    // shorter shared prefixes are not reused
};

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the scheduler thread. `metrics` may be null.
  Scheduler(Model& model, const Tokenizer& tokenizer, SchedulerOptions options, Metrics* metrics = nullptr);
  ~Scheduler();  // cancels whatever is left
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the request's prompts. Throws ApiError: 429 (with a Retry-After)
  // when the queue is full, 503 while draining, 400 when it could never fit
  // the KV budget or its options are invalid for this model.
  std::shared_ptr<Job> submit(const GenerationRequest& request);

  // Stops taking requests and waits until every queued and running one has
  // finished; at `deadline` the rest are cancelled (finish reason
  // "cancelled"). Returns once nothing is left.
  void drain(Clock::time_point deadline);

  const SchedulerOptions& options() const { return options_; }
  int64_t context() const { return options_.context; }

 private:
  struct Sequence;
  struct Task;

  void run();
  // Moves queued tasks that fit into `admitted` (called with mutex_ held).
  void admit_locked(std::vector<std::unique_ptr<Task>>& admitted);
  void start(Task& t);
  void step();
  void prefill_done(Task& t, const Logits& logits, int64_t first_row, int64_t rows, int64_t take,
                    std::vector<std::pair<Task*, int>>& to_step, std::vector<const float*>& step_rows);
  void decode(std::vector<std::pair<Task*, int>>& to_step, const std::vector<const float*>& rows);
  void publish_final(Task& t, int seq);
  void fail(Task& t, const std::string& message);
  void retire();
  void cancel_all();
  void publish_gauges();
  TokenLogprob logprob_of(const float* row, TokenId token, int top) const;

  Model& model_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  Metrics* metrics_;
  int64_t vocab_ = 0;  // ids that may be generated (log-probabilities are over them)
  std::unique_ptr<PromptCache> prompt_cache_;

  // Shared with submit() and drain(), under mutex_.
  std::mutex mutex_;
  std::condition_variable work_;  // the scheduler thread waits for work
  std::condition_variable idle_;  // drain() waits for the end
  std::deque<std::unique_ptr<Task>> queue_;
  size_t running_count_ = 0;
  int64_t active_sequences_ = 0;
  size_t kv_reserved_ = 0;
  bool accepting_ = true;
  bool cancel_all_ = false;
  bool stop_ = false;
  double seconds_per_task_ = 1.0;  // moving average, for Retry-After

  // The scheduler thread's own.
  std::vector<std::unique_ptr<Task>> running_;
  // Between forward passes: sampling and log-probabilities of the batch's
  // sequences, each over the whole vocabulary, run in parallel.
  ThreadPool pool_;
  int64_t steps_ = 0;
  std::thread thread_;
};

}  // namespace gptneo::server
