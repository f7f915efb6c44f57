#include "server/scheduler.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "runtime/logits_processors.h"
#include "server/api_error.h"
#include "server/kv_memory.h"

namespace gptneo::server {

struct Scheduler::Sequence {
  int index = 0;  // the choice index within the job
  KVCache cache;
  SequenceDecoder decoder;
  TokenId next = 0;  // the token to run next
  Clock::time_point last_token{};
};

// One prompt of a job and its n sequences.
struct Scheduler::Task {
  std::shared_ptr<Job> job;
  int prompt_index = 0;
  std::vector<TokenId> prompt;
  bool logprobs = false;
  int top_logprobs = 0;
  bool prompt_logprobs = false;
  int64_t capacity = 0;   // KV positions of each sequence
  size_t kv_bytes = 0;    // reserved for all its sequences
  int64_t prefilled = 0;  // prompt tokens already in seqs[0].cache
  int64_t cached = 0;     // of which came from the prompt cache
  bool decoding = false;  // the prompt is done
  bool failed = false;
  std::vector<Sequence> seqs;
  std::vector<TokenLogprob> prompt_lp;

  bool finished() const {
    return failed || (decoding && std::all_of(seqs.begin(), seqs.end(), [](const Sequence& s) {
             return s.decoder.finished();
           }));
  }
  bool dropped() const { return job->cancelled(); }
};

Scheduler::Scheduler(Model& model, const Tokenizer& tokenizer, SchedulerOptions options, Metrics* metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
  const ModelConfig& cfg = model.config();
  if (options_.context <= 0 || options_.context > cfg.max_positions) options_.context = cfg.max_positions;
  options_.parallel = std::max(1, options_.parallel);
  options_.queue_size = std::max(0, options_.queue_size);
  options_.prefill_tokens_per_step = std::max<int64_t>(1, options_.prefill_tokens_per_step);
  if (options_.kv_budget_bytes == 0)
    options_.kv_budget_bytes = static_cast<size_t>(options_.parallel) * kv_cache_bytes(model, options_.context);
  vocab_ = decode_context(model, &tokenizer, GenerateOptions{}).vocab;
  prompt_cache_ = std::make_unique<PromptCache>(model, options_.prompt_cache_bytes, options_.prompt_cache_min_tokens);
  publish_gauges();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    cancel_all_ = true;
    stop_ = true;
  }
  work_.notify_all();
  thread_.join();
}

std::shared_ptr<Job> Scheduler::submit(const GenerationRequest& r) {
  const int n = r.n();
  if (n > options_.parallel)
    throw ApiError(400, fmt::format("n must be at most {} (the server's --parallel)", options_.parallel), "n");
  DecodeContext ctx = decode_context(model_, &tokenizer_, r.options);
  ctx.max_positions = options_.context;
  auto job = std::make_shared<Job>(static_cast<int>(r.prompts.size()) * n);
  std::vector<std::unique_ptr<Task>> tasks;
  for (size_t p = 0; p < r.prompts.size(); ++p) {
    auto t = std::make_unique<Task>();
    t->job = job;
    t->prompt_index = static_cast<int>(p);
    t->prompt = r.prompts[p];
    t->logprobs = r.logprobs;
    t->top_logprobs = r.top_logprobs;
    t->prompt_logprobs = r.prompt_logprobs();
    const auto len = static_cast<int64_t>(t->prompt.size());
    // The last generated token is never run: P + max_tokens - 1 positions.
    t->capacity = std::clamp(len + r.options.max_new_tokens - 1, len, options_.context);
    t->kv_bytes = static_cast<size_t>(n) * kv_cache_bytes(model_, t->capacity);
    if (t->kv_bytes > options_.kv_budget_bytes)
      throw ApiError(400,
                     fmt::format("this request needs {:.1f} MiB of KV cache ({} sequences of {} positions), more than "
                                 "the server's budget of {:.1f} MiB: lower max_tokens or n",
                                 t->kv_bytes / 1048576.0, n, t->capacity, options_.kv_budget_bytes / 1048576.0),
                     "max_tokens", "kv_budget_exceeded");
    const uint64_t seed = r.options.seed ? *r.options.seed : random_seed();
    try {
      SequenceDecoder first(r.options, ctx, t->prompt, seed);
      for (int i = 1; i < n; ++i)
        t->seqs.push_back({static_cast<int>(p) * n + i, {}, first.fork(choice_seed(seed, i), false), 0, {}});
      t->seqs.insert(t->seqs.begin(), Sequence{static_cast<int>(p) * n, {}, std::move(first), 0, {}});
    } catch (const Error& e) {
      throw ApiError(400, e.what());
    }
    tasks.push_back(std::move(t));
  }
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) throw ApiError(503, "the server is shutting down", {}, "shutting_down");
    // Prompts that can start at the next step never wait: the queue only
    // bounds those that must (so --queue 0 means "no waiting", not "no service").
    size_t need_kv = 0;
    for (const auto& t : tasks) need_kv += t->kv_bytes;
    const bool starts_now = queue_.empty() &&
                            active_sequences_ + static_cast<int64_t>(tasks.size()) * n <= options_.parallel &&
                            kv_reserved_ + need_kv <= options_.kv_budget_bytes;
    if (!starts_now && queue_.size() + tasks.size() > static_cast<size_t>(options_.queue_size)) {
      ApiError e(429,
                 fmt::format("the server is busy: {} requests are waiting (the queue holds {}); retry later",
                             queue_.size(), options_.queue_size),
                 {}, "queue_full");
      const double wait = seconds_per_task_ * static_cast<double>(queue_.size() + 1) / options_.parallel;
      e.retry_after_seconds = static_cast<int>(std::clamp(std::ceil(wait), 1.0, 60.0));
      throw e;
    }
    for (auto& t : tasks) queue_.push_back(std::move(t));
  }
  work_.notify_one();
  return job;
}

void Scheduler::drain(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  accepting_ = false;
  auto done = [&] { return queue_.empty() && running_count_ == 0; };
  if (!idle_.wait_until(lock, deadline, done)) {
    cancel_all_ = true;
    work_.notify_all();
    idle_.wait(lock, done);
  }
}

// ---- the scheduler thread --------------------------------------------------------

void Scheduler::run() {
  std::vector<std::unique_ptr<Task>> admitted;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stop_ || cancel_all_ || !queue_.empty() || !running_.empty(); });
      if (cancel_all_) {
        cancel_all_ = false;  // one sweep: nothing new is accepted any more
        lock.unlock();
        cancel_all();
        lock.lock();
      }
      if (stop_ && queue_.empty() && running_.empty()) break;
      admit_locked(admitted);
    }
    for (auto& t : admitted) {
      start(*t);
      running_.push_back(std::move(t));
    }
    admitted.clear();
    if (!running_.empty()) step();
    retire();
    publish_gauges();
  }
  idle_.notify_all();
}

void Scheduler::admit_locked(std::vector<std::unique_ptr<Task>>& admitted) {
  while (!queue_.empty()) {
    Task& t = *queue_.front();
    if (t.dropped()) {
      queue_.pop_front();
      continue;
    }
    const auto n = static_cast<int64_t>(t.seqs.size());
    // First come, first served: a request that does not fit yet blocks
    // those behind it, so that large requests are never starved.
    if (active_sequences_ + n > options_.parallel || kv_reserved_ + t.kv_bytes > options_.kv_budget_bytes) break;
    active_sequences_ += n;
    kv_reserved_ += t.kv_bytes;
    ++running_count_;
    admitted.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void Scheduler::start(Task& t) {
  const auto len = static_cast<int64_t>(t.prompt.size());
  const bool generates = !t.seqs[0].decoder.finished();
  if (!generates && !t.prompt_logprobs) {
    // max_tokens 0 and nothing to score: no model work at all.
    t.decoding = true;
    t.job->add_prompt_tokens(len, 0);
    for (size_t i = 0; i < t.seqs.size(); ++i) publish_final(t, static_cast<int>(i));
    return;
  }
  // Prompt log-probabilities need the logits of every prompt position, so
  // nothing of such a prompt comes from the cache.
  std::optional<PromptCache::Hit> hit;
  if (!t.prompt_logprobs) hit = prompt_cache_->lookup(t.prompt, t.capacity);
  if (hit) {
    t.seqs[0].cache = std::move(hit->cache);
    t.prefilled = t.cached = hit->length;
  } else {
    t.seqs[0].cache = model_.new_cache(t.capacity);
  }
  t.job->add_prompt_tokens(len, t.cached);
}

void Scheduler::step() {
  std::vector<SequenceChunk> chunks;
  struct Slot {
    Task* task;
    int seq;       // -1: a prefill chunk
    int64_t rows;  // logits rows of the chunk
    int64_t take;  // prefill: prompt tokens in the chunk
  };
  std::vector<Slot> slots;
  for (auto& tp : running_) {
    Task& t = *tp;
    if (!t.decoding || t.failed || t.dropped()) continue;
    for (size_t i = 0; i < t.seqs.size(); ++i) {
      Sequence& s = t.seqs[i];
      if (s.decoder.finished()) continue;
      chunks.push_back({&s.cache, {&s.next, 1}, false, 0});
      slots.push_back({&t, static_cast<int>(i), 1, 0});
    }
  }
  int64_t budget = options_.prefill_tokens_per_step;
  for (auto& tp : running_) {
    Task& t = *tp;
    if (t.decoding || t.failed || t.dropped() || budget <= 0) continue;
    const int64_t take = std::min<int64_t>(static_cast<int64_t>(t.prompt.size()) - t.prefilled, budget);
    budget -= take;
    const std::span<const TokenId> tokens(t.prompt.data() + t.prefilled, static_cast<size_t>(take));
    chunks.push_back({&t.seqs[0].cache, tokens, t.prompt_logprobs, 0});
    slots.push_back({&t, -1, t.prompt_logprobs ? take : 1, take});
  }
  if (chunks.empty()) return;

  Logits logits;
  try {
    logits = model_.forward(chunks);
  } catch (const std::exception& e) {
    for (const Slot& s : slots) fail(*s.task, fmt::format("the model failed: {}", e.what()));
    return;
  }
  ++steps_;
  if (metrics_) metrics_->batch_size.observe(static_cast<double>(chunks.size()));

  std::vector<std::pair<Task*, int>> to_step;
  std::vector<const float*> step_rows;
  int64_t row = 0;
  for (const Slot& s : slots) {
    if (s.seq >= 0) {
      to_step.emplace_back(s.task, s.seq);
      step_rows.push_back(logits.row(row));
    } else {
      prefill_done(*s.task, logits, row, s.rows, s.take, to_step, step_rows);
    }
    row += s.rows;
  }
  decode(to_step, step_rows);
}

void Scheduler::prefill_done(Task& t, const Logits& logits, int64_t first_row, int64_t rows, int64_t take,
                             std::vector<std::pair<Task*, int>>& to_step, std::vector<const float*>& step_rows) {
  const auto len = static_cast<int64_t>(t.prompt.size());
  if (t.prompt_logprobs) {
    // Row j predicts the prompt token after position prefilled + j (each a
    // log-softmax over the vocabulary: in parallel, a long prompt has many).
    const int64_t scored = std::min(rows, len - 1 - t.prefilled);
    if (scored > 0) {
      const size_t at = t.prompt_lp.size();
      t.prompt_lp.resize(at + static_cast<size_t>(scored));
      pool_.parallel_for(scored, 1, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j)
          t.prompt_lp[at + static_cast<size_t>(j)] =
              logprob_of(logits.row(first_row + j), t.prompt[static_cast<size_t>(t.prefilled + j + 1)], t.top_logprobs);
      });
    }
  }
  t.prefilled += take;
  if (t.prefilled < len) return;

  t.decoding = true;
  if (t.prompt_logprobs)
    t.job->push_prompt_logprobs({t.prompt_index, std::move(t.prompt_lp)});
  else
    prompt_cache_->insert(t.prompt, t.seqs[0].cache);
  const float* last = logits.row(first_row + rows - 1);
  for (size_t i = 0; i < t.seqs.size(); ++i) {
    Sequence& s = t.seqs[i];
    if (s.decoder.finished()) {
      publish_final(t, static_cast<int>(i));
      continue;
    }
    if (i > 0) s.cache = t.seqs[0].cache.copy();
    to_step.emplace_back(&t, static_cast<int>(i));
    step_rows.push_back(last);
  }
}

void Scheduler::decode(std::vector<std::pair<Task*, int>>& to_step, const std::vector<const float*>& rows) {
  // Each sequence's decoder (sampler, random generator, stop sequences) is
  // its own, so the rows are decoded in parallel; what is shared (jobs,
  // metrics, a task's failure) is done afterwards, in order.
  struct Decoded {
    SequenceDecoder::Step step;
    std::optional<TokenLogprob> logprob;
    std::optional<std::string> error;
  };
  std::vector<Decoded> out(to_step.size());
  pool_.parallel_for(static_cast<int64_t>(to_step.size()), 1, [&](int64_t begin, int64_t end) {
    for (auto k = static_cast<size_t>(begin); k < static_cast<size_t>(end); ++k) {
      Task& t = *to_step[k].first;
      if (t.failed) continue;
      Sequence& s = t.seqs[static_cast<size_t>(to_step[k].second)];
      try {
        out[k].step = s.decoder.step({rows[k], static_cast<size_t>(vocab_)});
        if (t.logprobs) out[k].logprob = logprob_of(rows[k], out[k].step.token, t.top_logprobs);
      } catch (const std::exception& ex) {
        out[k].error = ex.what();
      }
    }
  });
  const auto now = Clock::now();
  for (size_t k = 0; k < to_step.size(); ++k) {
    Task& t = *to_step[k].first;
    if (t.failed) continue;
    if (out[k].error) {
      fail(t, *out[k].error);
      continue;
    }
    Sequence& s = t.seqs[static_cast<size_t>(to_step[k].second)];
    TokenEvent e;
    e.token = out[k].step.token;
    e.text = std::move(out[k].step.text);
    e.finished = out[k].step.finished;
    e.logprob = std::move(out[k].logprob);
    s.next = out[k].step.token;
    e.index = s.index;
    e.finish_reason = s.decoder.finish_reason();
    if (metrics_) {
      if (t.job->first_token())
        metrics_->time_to_first_token.observe(std::chrono::duration<double>(now - t.job->created).count());
      else if (s.last_token != Clock::time_point{})
        metrics_->time_per_output_token.observe(std::chrono::duration<double>(now - s.last_token).count());
    }
    s.last_token = now;
    t.job->push(std::move(e));
  }
}

void Scheduler::publish_final(Task& t, int seq) {
  Sequence& s = t.seqs[static_cast<size_t>(seq)];
  TokenEvent e;
  e.index = s.index;
  e.text = s.decoder.finished() ? std::string() : s.decoder.cancel();
  e.finished = true;
  e.finish_reason = s.decoder.finish_reason();
  t.job->push(std::move(e));
}

void Scheduler::fail(Task& t, const std::string& message) {
  if (t.failed) return;
  t.failed = true;
  t.job->fail(message);
  t.job->cancel();  // the job's other prompts stop too
}

void Scheduler::retire() {
  const auto now = Clock::now();
  for (auto it = running_.begin(); it != running_.end();) {
    Task& t = **it;
    if (!t.finished() && !t.dropped()) {
      ++it;
      continue;
    }
    int64_t generated = 0;
    for (const Sequence& s : t.seqs) generated += static_cast<int64_t>(s.decoder.tokens().size());
    // Keep the first sequence's keys and values: a chat that goes on
    // starts with this prompt and reply.
    const Sequence& first = t.seqs[0];
    if (!t.failed && !t.prompt_logprobs && !first.decoder.tokens().empty()) {
      std::vector<TokenId> tokens = t.prompt;
      tokens.insert(tokens.end(), first.decoder.tokens().begin(), first.decoder.tokens().end() - 1);
      prompt_cache_->insert(tokens, first.cache);
    }
    if (metrics_) metrics_->count_tokens(static_cast<int64_t>(t.prompt.size()), t.cached, generated);
    {
      std::lock_guard lock(mutex_);
      active_sequences_ -= static_cast<int64_t>(t.seqs.size());
      kv_reserved_ -= t.kv_bytes;
      --running_count_;
      const double seconds = std::chrono::duration<double>(now - t.job->created).count();
      seconds_per_task_ = 0.9 * seconds_per_task_ + 0.1 * seconds;
    }
    it = running_.erase(it);
  }
  idle_.notify_all();
}

void Scheduler::cancel_all() {
  std::deque<std::unique_ptr<Task>> queued;
  {
    std::lock_guard lock(mutex_);
    queued.swap(queue_);
  }
  for (auto& t : queued) {
    for (size_t i = 0; i < t->seqs.size(); ++i) publish_final(*t, static_cast<int>(i));
  }
  for (auto& t : running_) {
    if (t->failed) continue;
    for (size_t i = 0; i < t->seqs.size(); ++i)
      if (!t->seqs[i].decoder.finished() || !t->decoding) publish_final(*t, static_cast<int>(i));
    t->decoding = true;
  }
  idle_.notify_all();
}

TokenLogprob Scheduler::logprob_of(const float* row, TokenId token, int top) const {
  const std::vector<double> lp = log_softmax({row, static_cast<size_t>(vocab_)});
  TokenLogprob t{token, static_cast<float>(lp[static_cast<size_t>(token)]), {}};
  if (top > 0) t.top = top_entries(std::span<const double>(lp), top);
  return t;
}

void Scheduler::publish_gauges() {
  if (!metrics_) return;
  SchedulerGauges g;
  {
    std::lock_guard lock(mutex_);
    g.queued_requests = static_cast<int64_t>(queue_.size());
    g.running_requests = static_cast<int64_t>(running_count_);
    g.active_sequences = active_sequences_;
    g.kv_bytes = static_cast<int64_t>(kv_reserved_);
  }
  g.slots = options_.parallel;
  g.kv_budget_bytes = static_cast<int64_t>(options_.kv_budget_bytes);
  g.steps = steps_;
  const PromptCache::Stats pc = prompt_cache_->stats();
  g.prompt_cache_entries = static_cast<int64_t>(pc.entries);
  g.prompt_cache_bytes = static_cast<int64_t>(pc.bytes);
  g.prompt_cache_lookups = static_cast<int64_t>(pc.lookups);
  g.prompt_cache_hits = static_cast<int64_t>(pc.hits);
  g.prompt_cache_hit_tokens = static_cast<int64_t>(pc.hit_tokens);
  metrics_->set_gauges(g);
}

}  // namespace gptneo::server
