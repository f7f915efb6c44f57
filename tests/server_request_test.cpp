// Reading OpenAI requests: every field, and an OpenAI-style error naming the
// field for every kind of bad input.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/request.h"
#include "test_support.h"

namespace gptneo::server {
namespace {

using nlohmann::json;

class ServerRequest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tok_ = new Tokenizer(Tokenizer::load(test::tokenizer_dir())); }
  static void TearDownTestSuite() { delete tok_; }

  static RequestLimits limits() {
    RequestLimits l;
    l.model_name = "neo-mini";
    l.context = 64;
    l.max_n = 4;
    l.max_prompts = 3;
    return l;
  }
  static GenerationRequest completion(const json& body) { return parse_completion_request(body, *tok_, limits()); }
  static GenerationRequest chat(const json& body) {
    return parse_chat_request(body, *tok_, ChatTemplate{}, limits());
  }
  // The ApiError a body gets.
  template <class F>
  static ApiError error_of(F&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e;
    }
    ADD_FAILURE() << "no error";
    return ApiError(0, "");
  }
  static ApiError completion_error(const json& body) { return error_of([&] { completion(body); }); }
  static ApiError chat_error(const json& body) { return error_of([&] { chat(body); }); }

  static Tokenizer* tok_;
};
Tokenizer* ServerRequest::tok_ = nullptr;

TEST_F(ServerRequest, ACompletionWithOpenAIFields) {
  const GenerationRequest r = completion({{"model", "neo-mini"},
                                          {"prompt", "Hello world"},
                                          {"max_tokens", 5},
                                          {"temperature", 0.5},
                                          {"top_p", 0.9},
                                          {"n", 2},
                                          {"stop", {"\n", "."}},
                                          {"stream", true},
                                          {"logprobs", 3},
                                          {"presence_penalty", 0.5},
                                          {"frequency_penalty", 0.25},
                                          {"logit_bias", {{"50256", -100}}},
                                          {"seed", 42},
                                          {"user", "someone"},
                                          {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tok_->encode("Hello world"));
  EXPECT_EQ(r.options.max_new_tokens, 5);
  EXPECT_FLOAT_EQ(r.options.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.9f);
  EXPECT_EQ(r.n(), 2);
  EXPECT_EQ(r.options.stop, (std::vector<std::string>{"\n", "."}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_FALSE(r.options.logprobs);  // the server computes them itself
  EXPECT_FLOAT_EQ(r.options.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.options.sampling.frequency_penalty, 0.25f);
  EXPECT_FLOAT_EQ(r.options.sampling.logit_bias.at(50256), -100.0f);
  EXPECT_EQ(r.options.seed, 42u);
  EXPECT_EQ(r.user, "someone");
}

TEST_F(ServerRequest, GptneoOptionsByTheirOwnNames) {
  const GenerationRequest r = completion({{"prompt", "x"},
                                          {"top_k", 5},
                                          {"min_p", 0.1},
                                          {"typical_p", 0.9},
                                          {"repetition_penalty", 1.3},
                                          {"no_repeat_ngram_size", 3},
                                          {"min_tokens", 2},
                                          {"ignore_eos", true},
                                          {"ban", {"foo"}}});
  EXPECT_EQ(r.options.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(r.options.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.options.sampling.typical_p, 0.9f);
  EXPECT_FLOAT_EQ(r.options.sampling.repetition_penalty, 1.3f);
  EXPECT_EQ(r.options.sampling.no_repeat_ngram_size, 3);
  EXPECT_EQ(r.options.min_new_tokens, 2);
  EXPECT_FALSE(r.options.stop_at_eos);
  EXPECT_EQ(r.options.sampling.banned_words, std::vector<std::string>{"foo"});
}

TEST_F(ServerRequest, PromptShapes) {
  EXPECT_EQ(completion({{"prompt", {"a b", "c"}}}).prompts.size(), 2u);
  const GenerationRequest ids = completion({{"prompt", {15496, 995}}});
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(ids.prompts[0], (std::vector<TokenId>{15496, 995}));
  EXPECT_EQ(ids.prompt_texts[0], "Hello world");
  EXPECT_EQ(completion({{"prompt", {{1, 2}, {3}}}}).prompts.size(), 2u);
  // An empty prompt starts after <|endoftext|>.
  EXPECT_EQ(completion({{"prompt", ""}}).prompts[0], std::vector<TokenId>{tok_->eos_id()});
}

TEST_F(ServerRequest, DefaultsAndNulls) {
  const GenerationRequest r = completion({{"prompt", "x"}, {"max_tokens", nullptr}, {"stop", nullptr}, {"n", nullptr}});
  EXPECT_EQ(r.options.max_new_tokens, 16);
  EXPECT_EQ(r.n(), 1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.logprobs);
  EXPECT_FALSE(r.options.seed.has_value());
}

TEST_F(ServerRequest, NegativeSeedsAreSeedsToo) {
  EXPECT_EQ(completion({{"prompt", "x"}, {"seed", -1}}).options.seed, UINT64_MAX);
}

TEST_F(ServerRequest, EchoWithLogprobsScoresThePrompt) {
  const GenerationRequest r = completion({{"prompt", "x y"}, {"echo", true}, {"logprobs", 0}, {"max_tokens", 0}});
  EXPECT_TRUE(r.prompt_logprobs());
  EXPECT_EQ(r.options.max_new_tokens, 0);
  EXPECT_FALSE(completion({{"prompt", "x"}, {"echo", true}}).prompt_logprobs());
}

TEST_F(ServerRequest, ErrorsNameTheirField) {
  struct Case {
    json body;
    std::string param;
    int status = 400;
  };
  const std::vector<Case> cases = {
      {{{"prompt", "x"}, {"model", "gpt-4"}}, "model", 404},
      {{{"prompt", "x"}, {"model", 3}}, "model"},
      {{{"max_tokens", 3}}, "prompt"},
      {{{"prompt", 5}}, "prompt"},
      {{{"prompt", json::array()}}, "prompt"},
      {{{"prompt", {"a", 1}}}, "prompt"},
      {{{"prompt", {-1}}}, "prompt"},
      {{{"prompt", {99999999}}}, "prompt"},
      {{{"prompt", {"a", "b", "c", "d"}}}, "prompt"},
      {{{"prompt", "x"}, {"temperature", "hot"}}, "temperature"},
      {{{"prompt", "x"}, {"temperature", -1}}, "temperature"},
      {{{"prompt", "x"}, {"top_p", 0}}, "top_p"},
      {{{"prompt", "x"}, {"max_tokens", -1}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 1.5}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 64}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 18446744073709551615ull}}, "max_tokens"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"n", 5}}, "n"},
      {{{"prompt", "x"}, {"best_of", 3}}, "best_of"},
      {{{"prompt", "x"}, {"logprobs", 21}}, "logprobs"},
      {{{"prompt", "x"}, {"logprobs", true}}, "logprobs"},
      {{{"prompt", "x"}, {"stream", "yes"}}, "stream"},
      {{{"prompt", "x"}, {"stop", {""}}}, "stop"},
      {{{"prompt", "x"}, {"stop", {1}}}, "stop"},
      {{{"prompt", "x"}, {"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"logit_bias", {{"60000", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"seed", "s"}}, "seed"},
      {{{"prompt", "x"}, {"suffix", "end"}}, "suffix"},
      {{{"prompt", "x"}, {"frobnicate", 1}}, "frobnicate"},
      {{{"prompt", "x"}, {"num_beams", 4}}, "num_beams"},
      {{{"prompt", "x"}, {"stream_options", {{"other", 1}}}}, "stream_options"},
  };
  for (const Case& c : cases) {
    const ApiError e = completion_error(c.body);
    EXPECT_EQ(e.status, c.status) << c.body.dump();
    EXPECT_EQ(e.param, c.param) << c.body.dump() << ": " << e.what();
    EXPECT_FALSE(std::string(e.what()).empty());
  }
}

TEST_F(ServerRequest, PromptsLongerThanTheContext) {
  std::string text;
  for (int i = 0; i < 80; ++i) text += " word";
  const ApiError e = completion_error({{"prompt", text}});
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.param, "prompt");
  EXPECT_NE(std::string(e.what()).find("maximum context length is 64"), std::string::npos) << e.what();
  // "truncate": "left" keeps the end instead.
  const GenerationRequest r = completion({{"prompt", text}, {"truncate", "left"}, {"max_tokens", 8}});
  EXPECT_LE(r.prompts[0].size() + 8, 64u);
}

TEST_F(ServerRequest, BodiesThatAreNotJsonObjects) {
  auto code_of = [&](const std::string& body) { return error_of([&] { parse_json_body(body); }).code; };
  EXPECT_EQ(code_of("{\"prompt\": \"x\""), "invalid_json");
  EXPECT_EQ(code_of("{\"prompt\": \"\xff\"}"), "invalid_utf8");
  EXPECT_EQ(error_of([&] { parse_json_body("[1, 2]"); }).status, 400);
  EXPECT_EQ(error_of([&] { parse_json_body(""); }).status, 400);
  // Deep nesting is an error, not a stack overflow.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(error_of([&] { parse_json_body(deep); }).status, 400);
  const std::string deep_field = "{\"prompt\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(code_of(deep_field), "invalid_json");
  // Brackets inside strings are text, not nesting.
  EXPECT_TRUE(parse_json_body("{\"prompt\": \"" + std::string(1000, '[') + "\\\"\"}").is_object());
  EXPECT_TRUE(parse_json_body(" {\"a\": 1} ").is_object());
}

TEST_F(ServerRequest, ChatMessagesAreRenderedWithTheTemplate) {
  const GenerationRequest r = chat({{"model", "neo-mini"},
                                    {"messages",
                                     {{{"role", "system"}, {"content", "Be brief."}},
                                      {{"role", "user"}, {"content", "Hi"}},
                                      {{"role", "assistant"}, {"content", "Hello!"}},
                                      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Why?"}}}}}}},
                                    {"stop", "END"},
                                    {"max_tokens", 8}});
  const std::string want = "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Why?\nAssistant:";
  EXPECT_EQ(r.prompt_texts[0], want);
  EXPECT_EQ(r.prompts[0], tok_->encode(want));
  EXPECT_EQ(r.options.stop, (std::vector<std::string>{"\nUser:", "END"}));
  EXPECT_EQ(r.endpoint, Endpoint::Chat);
}

TEST_F(ServerRequest, ChatDefaultsToTheRestOfTheContext) {
  const GenerationRequest r = chat({{"messages", {{{"role", "user"}, {"content", "Hi"}}}}});
  EXPECT_EQ(r.options.max_new_tokens, 64);
  const GenerationRequest lp =
      chat({{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"logprobs", true}, {"top_logprobs", 2}});
  EXPECT_TRUE(lp.logprobs);
  EXPECT_EQ(lp.top_logprobs, 2);
}

TEST_F(ServerRequest, ChatErrors) {
  const json user = {{"role", "user"}, {"content", "Hi"}};
  EXPECT_EQ(chat_error({{"model", "neo-mini"}}).param, "messages");
  EXPECT_EQ(chat_error({{"messages", json::array()}}).param, "messages");
  EXPECT_EQ(chat_error({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}).param, "messages[0].role");
  EXPECT_EQ(chat_error({{"messages", {user, {{"role", "user"}}}}}).param, "messages[1].content");
  EXPECT_EQ(chat_error({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}).param,
            "messages[0].content");
  EXPECT_EQ(chat_error({{"messages", {"hi"}}}).param, "messages[0]");
  EXPECT_EQ(chat_error({{"messages", {user}}, {"top_logprobs", 2}}).param, "top_logprobs");
  EXPECT_EQ(chat_error({{"messages", {user}}, {"tools", {{{"type", "function"}}}}}).param, "tools");
  EXPECT_EQ(chat_error({{"messages", {user}}, {"echo", true}}).param, "echo");
  EXPECT_EQ(chat_error({{"messages", {user}}, {"model", "other"}}).status, 404);
}

}  // namespace
}  // namespace gptneo::server
