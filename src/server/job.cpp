#include "server/job.h"

namespace gptneo::server {

void Job::push(TokenEvent event) {
  {
    std::lock_guard lock(mutex_);
    if (event.finished) --remaining_;
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

void Job::push_prompt_logprobs(PromptLogprobs logprobs) {
  {
    std::lock_guard lock(mutex_);
    prompts_.push_back(std::move(logprobs));
  }
  ready_.notify_all();
}

void Job::fail(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (error_.empty()) error_ = message.empty() ? "generation failed" : message;
    remaining_ = 0;
  }
  ready_.notify_all();
}

void Job::add_prompt_tokens(int64_t tokens, int64_t cached) {
  prompt_tokens_ += tokens;
  cached_tokens_ += cached;
}

Job::Update Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty() || !prompts_.empty() || remaining_ <= 0; });
  Update u;
  u.events.swap(events_);
  u.prompts.swap(prompts_);
  u.done = remaining_ <= 0;
  u.error = error_;
  return u;
}

}  // namespace gptneo::server
