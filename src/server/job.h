// One HTTP request inside the scheduler: the scheduler thread publishes its
// sequences' tokens here, the thread answering the client takes them out.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gptneo/generate.h"

namespace gptneo::server {

// What one scheduler step did for one sequence.
struct TokenEvent {
  int index = 0;                  // the choice: prompt index × n + sequence index
  std::optional<TokenId> token;   // none in a final event without a token of its own
  std::string text;               // text released by this token (held-back bytes come later)
  std::optional<TokenLogprob> logprob;  // when the request asked for logprobs
  bool finished = false;
  FinishReason finish_reason = FinishReason::Length;
};

// The log-probabilities of a prompt's tokens (echo + logprobs): one entry
// for each token after the first.
struct PromptLogprobs {
  int prompt = 0;
  std::vector<TokenLogprob> entries;
};

class Job {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Job(int sequences) : remaining_(sequences) {}

  // ---- the scheduler's side
  void push(TokenEvent event);
  void push_prompt_logprobs(PromptLogprobs logprobs);
  // Ends the job with an error (every sequence counts as finished).
  void fail(const std::string& message);
  // Prompt tokens run, and of them taken from the prompt cache.
  void add_prompt_tokens(int64_t tokens, int64_t cached);
  // True the first time only: the request's first generated token.
  bool first_token() { return !first_token_seen_.exchange(true); }

  // ---- the answering thread's side
  struct Update {
    std::vector<TokenEvent> events;
    std::vector<PromptLogprobs> prompts;
    bool done = false;   // every sequence finished (or failed)
    std::string error;   // non-empty: the job failed
  };
  // Everything published since the last call; waits up to `timeout` when
  // there is nothing yet.
  Update wait(std::chrono::milliseconds timeout);
  // The client is gone: the scheduler drops the job at its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t cached_tokens() const { return cached_tokens_; }
  const Clock::time_point created = Clock::now();

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<TokenEvent> events_;
  std::vector<PromptLogprobs> prompts_;
  int remaining_;
  std::string error_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> first_token_seen_{false};
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> cached_tokens_{0};
};

}  // namespace gptneo::server
