// Chat: the template, fitting a long conversation into the context, and the
// `gptneo chat` command driven through a pipe.
#include <gtest/gtest.h>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "test_support.h"

namespace gptneo {
namespace {

const Tokenizer& tok() {
  static Tokenizer t = Tokenizer::load(test::neo_trained_dir());
  return t;
}

TEST(GenerateChat, DefaultTemplateRendersTheDocumentedFormat) {
  const ChatTemplate t;
  const std::vector<ChatMessage> m = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Who are you?"}};
  EXPECT_EQ(t.render(m), "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Who are you?\nAssistant:");
  EXPECT_EQ(ChatTemplate::clean_reply(" I am a model.\n"), "I am a model.");
  const std::vector<ChatMessage> bad = {{"robot", "x"}};
  EXPECT_THROW(t.render(bad), Error);
}

TEST(GenerateChat, TemplateFileOverridesFieldsAndRejectsUnknownOnes) {
  test::TempDir d;
  test::write_file(d / "t.json", R"({"user": "Q: {content}\n", "assistant": "A: {content}\n",
                                     "generation_prompt": "A:", "stop": "\nQ:"})");
  const ChatTemplate t = ChatTemplate::load(d / "t.json");
  const std::vector<ChatMessage> m = {{"user", "2+2?"}};
  EXPECT_EQ(t.render(m), "Q: 2+2?\nA:");
  EXPECT_EQ(t.stop, std::vector<std::string>{"\nQ:"});
  test::write_file(d / "bad.json", R"({"usr": "Q: {content}"})");
  EXPECT_THROW(ChatTemplate::load(d / "bad.json"), Error);
  test::write_file(d / "nocontent.json", R"({"user": "Q:"})");
  EXPECT_THROW(ChatTemplate::load(d / "nocontent.json"), Error);
}

TEST(GenerateChat, OldestTurnsAreDroppedToFitTheContext) {
  const ChatTemplate t;
  std::vector<ChatMessage> m = {{"system", "S"}};
  for (int i = 0; i < 6; ++i) {
    m.push_back({"user", "question number " + std::to_string(i) + " is about the weather today"});
    m.push_back({"assistant", "answer number " + std::to_string(i) + " says it is sunny"});
  }
  m.push_back({"user", "last question"});
  int dropped = -1;
  const auto all = fit_chat(t, tok(), m, 100000, &dropped);
  EXPECT_EQ(dropped, 0);
  const auto some = fit_chat(t, tok(), m, static_cast<int64_t>(all.size()) - 10, &dropped);
  EXPECT_EQ(dropped, 2) << "one user/assistant pair";
  const std::string text = tok().decode(some);
  EXPECT_EQ(text.rfind("S\n\nUser: question number 1", 0), 0u) << text;
  EXPECT_NE(text.find("last question\nAssistant:"), std::string::npos);
  EXPECT_THROW(fit_chat(t, tok(), m, 5, &dropped), Error);
}

Model& mini() {
  static std::unique_ptr<Model> m = Model::load(test::neo_trained_dir());
  return *m;
}

// The reply the library gives to `messages` (greedy), as chat shows it.
std::string expected_reply(const ChatTemplate& t, const std::vector<ChatMessage>& messages, int64_t n,
                           FinishReason* reason = nullptr) {
  GenerateOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = n;
  o.stop = t.stop;
  const auto r = generate(mini(), &tok(), tok().encode(t.render(messages)), o);
  if (reason) *reason = r.finish_reason;
  return ChatTemplate::clean_reply(r.choices[0].text);
}

TEST(GenerateChat, PipedConversationAnswersEachLineAndStopsAtQuit) {
  const auto r = test::run_cli({"-q", "chat", "--greedy", "-n", "12", "--system", "A friendly talk."},
                               "Hello there!\n\nHow are you today?\n/quit\nnever read\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<ChatMessage> first = {{"system", "A friendly talk."}, {"user", "Hello there!"}};
  const std::string reply = expected_reply(ChatTemplate{}, first, 12);
  ASSERT_FALSE(reply.empty());
  ASSERT_EQ(r.out.rfind(reply + "\n", 0), 0u) << r.out;
  // A second reply follows, and nothing for the line after /quit.
  const std::string second = r.out.substr(reply.size() + 1);
  EXPECT_GT(second.size(), 1u);
  EXPECT_EQ(second.back(), '\n');
  EXPECT_EQ(r.out.find("User:"), std::string::npos) << "the reply stops at the next user marker";
}

TEST(GenerateChat, ReplyStopsAtTheTemplatesUserMarker) {
  // A template whose user marker is " the": the greedy reply of this model
  // says " the" within a few tokens, and must end just before it.
  test::TempDir d;
  test::write_file(d / "t.json", R"({"user": "{content}\n", "assistant": "{content}\n", "generation_prompt": "",
                                     "stop": " the"})");
  const ChatTemplate t = ChatTemplate::load(d / "t.json");
  FinishReason reason = FinishReason::Length;
  const std::string reply = expected_reply(t, {{"user", "Once upon a time"}}, 40, &reason);
  EXPECT_EQ(reason, FinishReason::Stop);
  const auto r = test::run_cli({"-q", "chat", "--greedy", "-n", "40", "--template", (d / "t.json").string()},
                               "Once upon a time\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, reply + "\n");
  EXPECT_EQ(r.out.find(" the"), std::string::npos);
}

}  // namespace
}  // namespace gptneo
