// The server's scheduler: continuous batching gives each request what
// generate() gives it alone; chunked prefill, n > 1, the prompt cache, the
// KV budget, the bounded queue, cancellation and draining.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "gptneo/generate.h"
#include "gptneo/model.h"
#include "gptneo/tokenizer.h"
#include "runtime/logits_processors.h"
#include "server/api_error.h"
#include "server/kv_memory.h"
#include "server/metrics.h"
#include "server/prompt_cache.h"
#include "server/scheduler.h"
#include "test_support.h"

namespace gptneo::server {
namespace {

using namespace std::chrono_literals;

class ServerScheduler : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(test::neo_tiny_dir()).release();
    tok_ = new Tokenizer(Tokenizer::load(test::tokenizer_dir()));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tok_;
  }

  // A completions request for `text` with sampling and a fixed seed.
  static GenerationRequest request(const std::string& text, int64_t max_tokens, uint64_t seed, int n = 1) {
    GenerationRequest r;
    r.prompts.push_back(tok_->encode(text));
    r.prompt_texts.push_back(text);
    r.options.max_new_tokens = max_tokens;
    r.options.sampling.temperature = 0.9f;
    r.options.sampling.top_k = 40;
    r.options.seed = seed;
    r.options.num_return_sequences = n;
    return r;
  }

  // What generate() makes of the same request, alone.
  static GenerateResult alone(const GenerationRequest& r) {
    return generate(*model_, tok_, r.prompts[0], r.options);
  }

  // Checks greedy tokens made in a batch against the request decoded alone.
  // Batched and chunked matrix products round differently (~1e-7 here), so
  // where the two best tokens of the lone run are that close the batch may
  // have taken the runner-up; the comparison ends at such a fork. Anywhere
  // else a difference is a real error (a token lost, repeated or mixed up).
  static void expect_greedy_match(const GenerationRequest& r, const std::vector<TokenId>& got) {
    ASSERT_TRUE(r.options.sampling.is_greedy());
    const DecodeContext ctx = decode_context(*model_, tok_, r.options);
    SequenceDecoder decoder(r.options, ctx, r.prompts[0], 0);
    KVCache cache = model_->new_cache(model_->config().max_positions);
    SequenceChunk chunk{&cache, r.prompts[0]};
    Logits logits = model_->forward({&chunk, 1});
    for (size_t i = 0; i < got.size(); ++i) {
      const std::span<const float> row(logits.row(0), static_cast<size_t>(ctx.vocab));
      const auto top = top_entries(row, 2);
      const TokenId want = decoder.step(row).token;
      if (got[i] != want) {
        EXPECT_EQ(got[i], top[1].first) << "token " << i << " is neither the lone run's choice nor its runner-up";
        EXPECT_LT(top[0].second - top[1].second, 1e-5f) << "token " << i << " differs where there was no near tie";
        return;
      }
      if (decoder.finished()) {
        EXPECT_EQ(i + 1, got.size()) << "more tokens than the lone run";
        return;
      }
      TokenId next = want;
      SequenceChunk step{&cache, {&next, 1}};
      logits = model_->forward({&step, 1});
    }
    EXPECT_TRUE(decoder.finished()) << "fewer tokens (" << got.size() << ") than the lone run";
  }

  struct Collected {
    std::vector<std::vector<TokenId>> tokens;
    std::vector<std::string> text;
    std::vector<FinishReason> finish;
    std::vector<PromptLogprobs> prompts;
    std::string error;
  };
  // Waits for the job to finish and gathers its events by choice.
  static Collected collect(Job& job, size_t choices) {
    Collected c;
    c.tokens.resize(choices);
    c.text.resize(choices);
    c.finish.resize(choices, FinishReason::Length);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    for (;;) {
      Job::Update u = job.wait(50ms);
      for (auto& p : u.prompts) c.prompts.push_back(std::move(p));
      for (const TokenEvent& e : u.events) {
        if (e.token) c.tokens[e.index].push_back(*e.token);
        c.text[e.index] += e.text;
        if (e.finished) c.finish[e.index] = e.finish_reason;
      }
      if (u.done) {
        c.error = u.error;
        return c;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        ADD_FAILURE() << "the job did not finish";
        return c;
      }
    }
  }

  static Model* model_;
  static Tokenizer* tok_;
};
Model* ServerScheduler::model_ = nullptr;
Tokenizer* ServerScheduler::tok_ = nullptr;

TEST_F(ServerScheduler, ForwardAgreesAloneBatchedAndChunkedUpToRounding) {
  // Continuous batching relies on this: a sequence's logits do not depend
  // on the other sequences of the batch or on how its prompt was split,
  // except for the rounding of differently blocked matrix products.
  const std::vector<TokenId> a = tok_->encode("The quick brown fox jumps over the lazy dog and runs away");
  const std::vector<TokenId> b = tok_->encode("Hello world");
  KVCache alone_cache = model_->new_cache(64);
  SequenceChunk only{&alone_cache, a};
  const Logits ref = model_->forward({&only, 1});

  KVCache ca = model_->new_cache(64), cb = model_->new_cache(64);
  const std::span<const TokenId> sa(a);
  SequenceChunk first[] = {{&ca, sa.first(5)}, {&cb, b}};
  model_->forward(first);
  SequenceChunk second[] = {{&cb, {&b[0], 1}}, {&ca, sa.subspan(5)}};
  const Logits batched = model_->forward(second);
  ASSERT_EQ(batched.rows, 2);
  for (int64_t v = 0; v < ref.vocab; ++v) ASSERT_NEAR(ref.row(0)[v], batched.row(1)[v], 1e-5) << "vocab " << v;
}

TEST_F(ServerScheduler, KvBytesMatchTheCachesTheModelMakes) {
  for (int64_t cap : {1, 5, 64, 128})
    EXPECT_EQ(kv_cache_bytes(*model_, cap), model_->new_cache(cap).bytes()) << cap;
}

TEST_F(ServerScheduler, ConcurrentRequestsGetWhatEachGetsAlone) {
  Metrics metrics;
  SchedulerOptions o;
  o.parallel = 8;
  o.prefill_tokens_per_step = 6;  // several steps per prompt: prefill interleaves with decoding
  o.prompt_cache_bytes = 0;
  Scheduler s(*model_, *tok_, o, &metrics);
  const std::vector<std::string> prompts = {"Once upon a time", "The meaning of life is", "A",
                                            "In the beginning there was nothing but a long silence and then",
                                            "Numbers: 1, 2, 3,", "Dear diary, today"};
  std::vector<GenerationRequest> reqs;
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    reqs.push_back(request(prompts[i], 12 + static_cast<int64_t>(i) * 5, 100 + i));
    reqs.back().options.sampling.temperature = 0;
    jobs.push_back(s.submit(reqs.back()));
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    const Collected got = collect(*jobs[i], 1);
    expect_greedy_match(reqs[i], got.tokens[0]);
    EXPECT_EQ(got.text[0], tok_->decode(got.tokens[0]));  // nothing lost between the events
    EXPECT_EQ(jobs[i]->prompt_tokens(), static_cast<int64_t>(reqs[i].prompts[0].size()));
  }
  s.drain(std::chrono::steady_clock::now() + 10s);
  const std::string m = metrics.render();
  EXPECT_NE(m.find("gptneo_active_sequences 0\n"), std::string::npos);
  EXPECT_EQ(m.find("gptneo_batch_sequences_count 0\n"), std::string::npos);
}

TEST_F(ServerScheduler, ALoneSampledRequestIsWhatGenerateGives) {
  // Alone in the batch, with its prompt in one chunk, a seeded request runs
  // the very products generate() runs: the same tokens exactly.
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  for (uint64_t seed : {1u, 2u, 3u}) {
    GenerationRequest r = request("It was a dark and stormy night", 20, seed);
    const Collected got = collect(*s.submit(r), 1);
    const GenerateResult want = alone(r);
    EXPECT_EQ(got.tokens[0], want.choices[0].tokens);
    EXPECT_EQ(got.text[0], want.choices[0].text);
    EXPECT_EQ(got.finish[0], want.choices[0].finish_reason);
  }
}

TEST_F(ServerScheduler, SeveralChoicesMatchGenerate) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  GenerationRequest r = request("Numbers: one, two,", 10, 7, 3);
  const Collected got = collect(*s.submit(r), 3);
  const GenerateResult want = alone(r);
  ASSERT_EQ(want.choices.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got.tokens[i], want.choices[i].tokens) << i;
  EXPECT_NE(got.tokens[0], got.tokens[1]);  // independent samples
}

TEST_F(ServerScheduler, SeveralPromptsGetChoicesInPromptOrder) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  GenerationRequest r = request("first prompt", 6, 3, 2);
  r.options.sampling.temperature = 0;
  r.prompts.push_back(tok_->encode("second prompt"));
  r.prompt_texts.push_back("second prompt");
  const Collected got = collect(*s.submit(r), 4);
  for (int prompt = 0; prompt < 2; ++prompt) {
    GenerationRequest one = request(r.prompt_texts[prompt], 6, 3);
    one.options.sampling.temperature = 0;
    for (int choice = 0; choice < 2; ++choice) expect_greedy_match(one, got.tokens[prompt * 2 + choice]);
  }
}

TEST_F(ServerScheduler, StopSequencesAndHeldBackTextArriveWhole) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  GenerationRequest r = request("Once upon a time", 40, 11);
  const GenerateResult free_run = alone(r);
  // Stop at a piece of what the model writes anyway.
  const std::string text = free_run.choices[0].text;
  ASSERT_GE(text.size(), 8u);
  r.options.stop = {text.substr(4, 3)};
  const GenerateResult want = alone(r);
  const Collected got = collect(*s.submit(r), 1);
  EXPECT_EQ(got.text[0], want.choices[0].text);
  EXPECT_EQ(got.finish[0], FinishReason::Stop);
}

TEST_F(ServerScheduler, PromptCacheReusesASharedPrefixAndChangesNothing) {
  Metrics metrics;
  SchedulerOptions o;
  o.prompt_cache_min_tokens = 4;
  Scheduler s(*model_, *tok_, o, &metrics);
  const std::string system = "You are a helpful assistant who answers questions about the weather. ";
  GenerationRequest r1 = request(system + "Is it raining?", 8, 1);
  collect(*s.submit(r1), 1);
  GenerationRequest r2 = request(system + "Will it snow tomorrow?", 8, 2);
  r2.options.sampling.temperature = 0;
  auto job = s.submit(r2);
  const Collected got = collect(*job, 1);
  EXPECT_GE(job->cached_tokens(), static_cast<int64_t>(tok_->encode(system).size()) - 1);
  expect_greedy_match(r2, got.tokens[0]);
  const std::string m = metrics.render();
  EXPECT_NE(m.find("gptneo_prompt_cache_hits_total 1\n"), std::string::npos) << m;
}

TEST_F(ServerScheduler, PromptCacheContinuesAConversation) {
  PromptCache cache(*model_, 64u << 20, 4);
  // A sequence of 100 tokens, past neo-tiny's local window: the ring of its
  // local layers only holds the last positions.
  std::vector<TokenId> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back(100 + i);
  KVCache full = model_->new_cache(128);
  SequenceChunk c{&full, tokens};
  model_->forward({&c, 1});
  cache.insert(tokens, full);
  std::vector<TokenId> longer = tokens;
  longer.push_back(7);
  longer.push_back(8);
  auto hit = cache.lookup(longer, 128);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->length, 100);
  // Its continuation equals running everything from scratch.
  SequenceChunk rest{&hit->cache, std::span<const TokenId>(longer).subspan(100)};
  const Logits a = model_->forward({&rest, 1});
  KVCache scratch = model_->new_cache(128);
  SequenceChunk all{&scratch, longer};
  const Logits b = model_->forward({&all, 1});
  for (int64_t v = 0; v < a.vocab; ++v) ASSERT_NEAR(a.row(0)[v], b.row(0)[v], 1e-5);
  EXPECT_EQ(cache.stats().hits, 1u);
  // A prompt that leaves the cached sequence early cannot use it: the ring
  // of neo-tiny's local layers (window 16 + 64 slots) no longer holds the
  // keys of its first positions.
  ASSERT_EQ(model_->config().window_size, 16);
  std::vector<TokenId> early(tokens.begin(), tokens.begin() + 10);
  early.push_back(9);
  EXPECT_FALSE(cache.lookup(early, 128).has_value());
}

TEST_F(ServerScheduler, EchoWithLogprobsScoresThePrompt) {
  Scheduler s(*model_, *tok_, SchedulerOptions{.prefill_tokens_per_step = 3});
  GenerationRequest r = request("The cat sat on the mat.", 0, 1);
  r.echo = true;
  r.logprobs = true;
  r.top_logprobs = 2;
  const Collected got = collect(*s.submit(r), 1);
  ASSERT_EQ(got.prompts.size(), 1u);
  const auto& p = r.prompts[0];
  ASSERT_EQ(got.prompts[0].entries.size(), p.size() - 1);
  EXPECT_TRUE(got.tokens[0].empty());
  // Against the model's own logits of the whole prompt.
  KVCache cache = model_->new_cache(64);
  SequenceChunk c{&cache, p, true};
  const Logits l = model_->forward({&c, 1});
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    const auto lp = log_softmax({l.row(static_cast<int64_t>(i)), static_cast<size_t>(tok_->vocab_size())});
    EXPECT_EQ(got.prompts[0].entries[i].token, p[i + 1]);
    EXPECT_NEAR(got.prompts[0].entries[i].logprob, lp[p[i + 1]], 1e-5);
    EXPECT_EQ(got.prompts[0].entries[i].top.size(), 2u);
  }
}

TEST_F(ServerScheduler, LogprobsOfGeneratedTokens) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  GenerationRequest r = request("Hello", 5, 4);
  r.options.sampling.temperature = 0;  // greedy: the chosen token is the most likely
  r.logprobs = true;
  r.top_logprobs = 3;
  auto job = s.submit(r);
  std::vector<TokenLogprob> lps;
  for (;;) {
    Job::Update u = job->wait(50ms);
    for (const auto& e : u.events)
      if (e.logprob) lps.push_back(*e.logprob);
    if (u.done) break;
  }
  ASSERT_EQ(lps.size(), 5u);
  for (const auto& t : lps) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].first, t.token);
    EXPECT_FLOAT_EQ(t.top[0].second, t.logprob);
    EXPECT_LE(t.logprob, 0.0f);
  }
}

TEST_F(ServerScheduler, AFullQueueAnswers429WithRetryAfter) {
  SchedulerOptions o;
  o.parallel = 1;
  o.queue_size = 1;
  Scheduler s(*model_, *tok_, o);
  std::vector<std::shared_ptr<Job>> accepted;
  int rejected = 0;
  for (int i = 0; i < 20; ++i) {
    try {
      accepted.push_back(s.submit(request("Tell me a story", 100, static_cast<uint64_t>(i))));
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 429);
      EXPECT_EQ(e.code, "queue_full");
      EXPECT_GE(e.retry_after_seconds, 1);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  for (auto& j : accepted) EXPECT_TRUE(collect(*j, 1).error.empty());
}

TEST_F(ServerScheduler, TheKvBudgetMakesRequestsWaitAndRejectsWhatNeverFits) {
  SchedulerOptions o;
  o.parallel = 4;
  o.kv_budget_bytes = kv_cache_bytes(*model_, 40);  // one sequence of 40 positions
  Scheduler s(*model_, *tok_, o);
  GenerationRequest big = request("Hello there", 60, 1);
  try {
    s.submit(big);
    FAIL() << "a request larger than the budget was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "kv_budget_exceeded");
  }
  // Two that fit one at a time: the second waits, both are right.
  GenerationRequest a = request("Hello there", 20, 1), b = request("Goodbye now", 20, 2);
  auto ja = s.submit(a), jb = s.submit(b);
  EXPECT_EQ(collect(*ja, 1).tokens[0], alone(a).choices[0].tokens);
  EXPECT_EQ(collect(*jb, 1).tokens[0], alone(b).choices[0].tokens);
}

TEST_F(ServerScheduler, ACancelledJobLeavesTheBatch) {
  Metrics metrics;
  SchedulerOptions o;
  o.parallel = 1;
  Scheduler s(*model_, *tok_, o, &metrics);
  GenerationRequest r = request("Once", 120, 1);
  r.options.stop_at_eos = false;
  auto job = s.submit(r);
  job->wait(1000ms);  // at least one token
  job->cancel();
  // The slot is free again: the next request runs to its end.
  GenerationRequest next = request("Twice", 5, 2);
  const Collected got = collect(*s.submit(next), 1);
  EXPECT_EQ(got.tokens[0], alone(next).choices[0].tokens);
}

TEST_F(ServerScheduler, DrainingCancelsWhatIsLeftAtTheDeadline) {
  SchedulerOptions o;
  o.parallel = 1;
  Scheduler s(*model_, *tok_, o);
  GenerationRequest r = request("Once", 127, 1);
  r.options.stop_at_eos = false;
  auto running = s.submit(r);
  auto queued = s.submit(request("Twice", 5, 2));
  s.drain(std::chrono::steady_clock::now());
  const Collected a = collect(*running, 1), b = collect(*queued, 1);
  EXPECT_EQ(b.finish[0], FinishReason::Cancelled);
  EXPECT_TRUE(a.finish[0] == FinishReason::Cancelled || a.tokens[0].size() == 127u);
  try {
    s.submit(request("Thrice", 5, 3));
    FAIL() << "accepted a request while draining";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 503);
  }
}

TEST_F(ServerScheduler, MaxTokensZeroRunsNothing) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  const Collected got = collect(*s.submit(request("Hello", 0, 1)), 1);
  EXPECT_TRUE(got.tokens[0].empty());
  EXPECT_EQ(got.finish[0], FinishReason::Length);
}

TEST_F(ServerScheduler, AnErrorWhileDecodingFailsOnlyThatRequest) {
  Scheduler s(*model_, *tok_, SchedulerOptions{});
  // Every token banned: the sampler has nothing to draw from.
  GenerationRequest r = request("Hello", 4, 1);
  for (TokenId id = 0; id < tok_->vocab_size(); ++id)
    r.options.sampling.logit_bias[id] = -std::numeric_limits<float>::infinity();
  const Collected bad = collect(*s.submit(r), 1);
  EXPECT_FALSE(bad.error.empty());
  GenerationRequest ok = request("Hello", 4, 1);
  EXPECT_EQ(collect(*s.submit(ok), 1).tokens[0], alone(ok).choices[0].tokens);
}

}  // namespace
}  // namespace gptneo::server
