// OpenAI response shapes and Server-Sent Events built from scheduler events,
// the metrics text, and the API-key checks.
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/response_builder.h"
#include "test_support.h"

namespace gptneo::server {
namespace {

using nlohmann::json;

class ServerResponse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tok_ = new Tokenizer(Tokenizer::load(test::tokenizer_dir())); }
  static void TearDownTestSuite() { delete tok_; }

  GenerationRequest completion(int n = 1) {
    GenerationRequest r;
    r.prompts.push_back(tok_->encode("Hello"));
    r.prompt_texts.push_back("Hello");
    r.options.num_return_sequences = n;
    return r;
  }
  static TokenEvent event(int index, TokenId token, std::string text, bool finished = false,
                          FinishReason reason = FinishReason::Length) {
    TokenEvent e;
    e.index = index;
    e.token = token;
    e.text = std::move(text);
    e.finished = finished;
    e.finish_reason = reason;
    return e;
  }
  static Job::Update update(std::vector<TokenEvent> events, bool done = false) {
    Job::Update u;
    u.events = std::move(events);
    u.done = done;
    return u;
  }

  static Tokenizer* tok_;
};
Tokenizer* ServerResponse::tok_ = nullptr;

TEST_F(ServerResponse, ServerSentEventFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // A character cut at the very end of a sequence never throws.
  EXPECT_EQ(dump_json(json("ab\xe2\x82")), "\"ab\xef\xbf\xbd\"");
}

TEST_F(ServerResponse, ErrorBodiesHaveOpenAIsShape) {
  const json e = error_body(ApiError(404, "no such model", "model", "model_not_found"));
  EXPECT_EQ(e, json::parse(R"({"error":{"message":"no such model","type":"invalid_request_error",
                                          "param":"model","code":"model_not_found"}})"));
  const json q = error_body(429, "busy");
  EXPECT_EQ(q["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(q["error"]["param"].is_null());
  EXPECT_EQ(error_body(500, "x")["error"]["type"], "server_error");
}

TEST_F(ServerResponse, CompletionChunksCarryEachPieceAndTheFinishReason) {
  GenerationRequest r = completion();
  ResponseBuilder b(r, *tok_, "neo-mini");
  auto c1 = b.chunks(update({event(0, 11, " world")}));
  ASSERT_EQ(c1.size(), 1u);
  EXPECT_EQ(c1[0]["object"], "text_completion");
  EXPECT_EQ(c1[0]["model"], "neo-mini");
  EXPECT_EQ(c1[0]["choices"][0]["text"], " world");
  EXPECT_TRUE(c1[0]["choices"][0]["finish_reason"].is_null());
  // A token whose text is held back makes no chunk.
  EXPECT_TRUE(b.chunks(update({event(0, 12, "")})).empty());
  auto c3 = b.chunks(update({event(0, 13, "!!", true, FinishReason::Eos)}, true));
  ASSERT_EQ(c3.size(), 1u);
  EXPECT_EQ(c3[0]["choices"][0]["text"], "!!");
  EXPECT_EQ(c3[0]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b.completion_tokens(), 3);
  EXPECT_EQ(c1[0]["id"], c3[0]["id"]);
}

TEST_F(ServerResponse, CompletionResponseWithSeveralChoicesAndUsage) {
  GenerationRequest r = completion(2);
  ResponseBuilder b(r, *tok_, "neo-mini");
  b.add(update({event(1, 5, "B"), event(0, 6, "A")}));
  b.add(update({event(0, 7, "a", true, FinishReason::Stop), event(1, 8, "b", true, FinishReason::Length)}, true));
  Job job(2);
  job.add_prompt_tokens(1, 0);
  const json j = b.response(job);
  EXPECT_EQ(j["object"], "text_completion");
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][0]["text"], "Aa");
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][1]["text"], "Bb");
  EXPECT_EQ(j["choices"][1]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 1);
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

TEST_F(ServerResponse, EchoAndPromptLogprobs) {
  GenerationRequest r = completion();
  r.prompts[0] = tok_->encode("Hello world");
  r.prompt_texts[0] = "Hello world";
  r.echo = true;
  r.logprobs = true;
  r.top_logprobs = 1;
  ResponseBuilder b(r, *tok_, "m");
  Job::Update u = update({}, true);
  u.prompts.push_back({0, {{r.prompts[0][1], -2.5f, {{r.prompts[0][1], -2.5f}}}}});
  TokenEvent last;
  last.finished = true;
  u.events.push_back(last);
  b.add(u);
  Job job(1);
  const json j = b.response(job);
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(j["choices"][0]["text"], "Hello world");
  EXPECT_EQ(lp["tokens"], json({"Hello", " world"}));
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(lp["token_logprobs"][1].get<float>(), -2.5f);
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(lp["top_logprobs"][1][" world"].get<float>(), -2.5f);
  EXPECT_EQ(lp["text_offset"], json({0, 5}));
}

TEST_F(ServerResponse, ChatChunksStartWithTheRoleAndDropTheReplysFirstSpace) {
  GenerationRequest r = completion();
  r.endpoint = Endpoint::Chat;
  ResponseBuilder b(r, *tok_, "m");
  auto c = b.chunks(update({event(0, 1, " Hi")}));
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(c[0]["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_EQ(c[1]["choices"][0]["delta"]["content"], "Hi");
  auto end = b.chunks(update({event(0, 2, " there", true, FinishReason::Stop)}, true));
  ASSERT_EQ(end.size(), 2u);
  EXPECT_EQ(end[0]["choices"][0]["delta"]["content"], " there");
  EXPECT_EQ(end[1]["choices"][0]["delta"], json::object());
  EXPECT_EQ(end[1]["choices"][0]["finish_reason"], "stop");
  Job job(1);
  const json full = b.response(job);
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"], json({{"role", "assistant"}, {"content", "Hi there"}}));
  EXPECT_EQ(b.usage_chunk(job)["choices"], json::array());
}

TEST_F(ServerResponse, ChatRepliesAreTrimmedAlsoWhileStreaming) {
  // As ChatTemplate::clean_reply: no white space at either end, the same
  // text streamed or not.
  GenerationRequest r = completion();
  r.endpoint = Endpoint::Chat;
  const std::vector<std::string> pieces = {" ", "\n", " Hello", " \n", "\n", "world", "  ", "\n"};
  ResponseBuilder streamed(r, *tok_, "m"), whole(r, *tok_, "m");
  std::string shown;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const bool last = i + 1 == pieces.size();
    const auto u = update({event(0, 1, pieces[i], last, FinishReason::Stop)}, last);
    for (const json& c : streamed.chunks(u))
      if (c["choices"][0]["delta"].contains("content")) shown += c["choices"][0]["delta"]["content"];
    whole.add(u);
  }
  EXPECT_EQ(shown, "Hello \n\nworld");
  Job job(1);
  EXPECT_EQ(whole.response(job)["choices"][0]["message"]["content"], shown);
}

TEST_F(ServerResponse, ChatLogprobs) {
  GenerationRequest r = completion();
  r.endpoint = Endpoint::Chat;
  r.logprobs = true;
  r.top_logprobs = 1;
  ResponseBuilder b(r, *tok_, "m");
  TokenEvent e = event(0, 15496, "Hello", true, FinishReason::Length);
  e.logprob = TokenLogprob{15496, -0.5f, {{15496, -0.5f}}};
  b.add(update({e}, true));
  Job job(1);
  const json lp = b.response(job)["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], "Hello");
  EXPECT_FLOAT_EQ(lp["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(lp["bytes"], json({72, 101, 108, 108, 111}));
  EXPECT_EQ(lp["top_logprobs"][0]["token"], "Hello");
}

TEST_F(ServerResponse, TokensThatAreNotWholeCharacters) {
  // GPT-2 byte-level BPE has tokens for single bytes of multi-byte characters.
  TokenId partial = -1;
  for (TokenId id = 0; id < tok_->vocab_size() && partial < 0; ++id)
    if (tok_->token_bytes(id) == "\xe2") partial = id;
  ASSERT_GE(partial, 0);
  EXPECT_EQ(token_string(*tok_, partial), "bytes:\\xe2");
  EXPECT_EQ(token_string(*tok_, 15496), "Hello");
}

TEST_F(ServerResponse, FinishReasons) {
  EXPECT_STREQ(finish_reason_name(FinishReason::Eos), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::Stop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::Length), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::Cancelled), "cancelled");
}

TEST(ServerMetrics, HistogramsAreCumulative) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.7);
  h.observe(5);
  std::string out;
  h.render(out, "x_seconds", "help text");
  EXPECT_EQ(out,
            "# HELP x_seconds help text\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"1\"} 3\nx_seconds_bucket{le=\"+Inf\"} 4\n"
            "x_seconds_sum 6.25\nx_seconds_count 4\n");
}

TEST(ServerMetrics, TheTextHasEveryMetric) {
  Metrics m;
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 200);
  m.count_request("/no/such/path", 404);
  m.count_tokens(10, 4, 20);
  SchedulerGauges g;
  g.queued_requests = 3;
  g.prompt_cache_lookups = 4;
  g.prompt_cache_hits = 1;
  g.kv_bytes = 50;
  g.kv_budget_bytes = 200;
  m.set_gauges(g);
  const std::string t = m.render();
  for (const char* line : {"gptneo_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n",
                           "gptneo_requests_total{endpoint=\"other\",status=\"404\"} 1\n",
                           "gptneo_prompt_tokens_total 10\n", "gptneo_prompt_tokens_cached_total 4\n",
                           "gptneo_generated_tokens_total 20\n", "gptneo_queue_length 3\n",
                           "gptneo_prompt_cache_hit_rate 0.25\n", "gptneo_kv_cache_usage_ratio 0.25\n",
                           "# TYPE gptneo_time_to_first_token_seconds histogram\n",
                           "# TYPE gptneo_time_per_output_token_seconds histogram\n",
                           "gptneo_active_sequences 0\n", "gptneo_model_loaded 0\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line;
}

TEST(ServerAuth, ConstantTimeComparison) {
  EXPECT_TRUE(constant_time_equal("secret-key", "secret-key"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-kez"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-key2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), "a"));
}

TEST(ServerAuth, BearerTokens) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
  EXPECT_EQ(bearer_token(""), "");
}

}  // namespace
}  // namespace gptneo::server
