// Stop sequences and streaming: stop text split across tokens, UTF-8
// characters split across tokens, held-back text released at the end, and
// the streamed pieces adding up to the final text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gptneo/generate.h"
#include "test_support.h"

namespace gptneo {
namespace {

const Tokenizer& tok() {
  static Tokenizer t = Tokenizer::load(test::neo_trained_dir());
  return t;
}
Model& mini() {
  static std::unique_ptr<Model> m = Model::load(test::neo_trained_dir());
  return *m;
}

TEST(GenerateStop, StopSequenceSplitAcrossPiecesIsCutAndHeldBackMeanwhile) {
  TextStreamer s(tok(), {"world"});
  EXPECT_EQ(s.push_bytes("Hello wor"), "Hello ") << "\"wor\" may begin the stop sequence";
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push_bytes("ld! more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "Hello ");
  EXPECT_EQ(s.flush(), "");
}

TEST(GenerateStop, AFalseStartIsReleasedOnceDecided) {
  TextStreamer s(tok(), {"world"});
  EXPECT_EQ(s.push_bytes("a wo"), "a ");
  EXPECT_EQ(s.push_bytes("nder"), "wonder");
  EXPECT_FALSE(s.stopped());
}

TEST(GenerateStop, NothingIsLostAtTheEnd) {
  TextStreamer s(tok(), {"abc"});
  EXPECT_EQ(s.push_bytes("xab"), "x");
  EXPECT_EQ(s.flush(), "ab");
  EXPECT_EQ(s.text(), "xab");
}

TEST(GenerateStop, MultiByteCharactersSplitAcrossTokensAreHeldWhole) {
  TextStreamer s(tok(), {});
  EXPECT_EQ(s.push_bytes("caf\xC3"), "caf");
  EXPECT_EQ(s.push_bytes("\xA9 \xF0\x9F"), "\xC3\xA9 ");  // "é " then half an emoji
  EXPECT_EQ(s.push_bytes("\x99\x82"), "\xF0\x9F\x99\x82");
  // Real tokens: " 𝄞" (4 bytes) is spelled by three byte-level tokens.
  TextStreamer t(tok(), {});
  const std::vector<TokenId> ids = tok().encode(" 𝄞ok");
  ASSERT_EQ(ids.size(), 5u);
  std::string out;
  for (TokenId id : ids) {
    const std::string piece = t.push(id);
    EXPECT_FALSE(utf8_first_invalid(piece).has_value()) << "a piece ends inside a character";
    out += piece;
  }
  out += t.flush();
  EXPECT_EQ(out, " 𝄞ok");
}

TEST(GenerateStop, StopSequenceStartingInsideAMultiByteCharacter) {
  TextStreamer s(tok(), {"é!"});
  EXPECT_EQ(s.push_bytes("x\xC3"), "x");
  EXPECT_EQ(s.push_bytes("\xA9"), "") << "\"é\" may begin the stop sequence";
  EXPECT_EQ(s.push_bytes("?"), "é?");
}

TEST(GenerateStop, TheModelStopsAtAStopSequenceAcrossTokens) {
  // Greedy continuation of the golden: ", and the time of the time, ..." as
  // tokens "," " and" " the" " time" " of"... "me of" spans " time" and " of".
  const std::vector<TokenId> prompt = tok().encode("Once upon a time");
  GenerateOptions o;
  o.max_new_tokens = 40;
  o.sampling.greedy = true;
  o.stop = {"me of"};
  std::string streamed;
  int finals = 0;
  const auto r = generate(mini(), &tok(), prompt, o, [&](const StreamEvent& e) {
    streamed += e.text;
    finals += e.finished;
    return true;
  });
  EXPECT_EQ(r.finish_reason, FinishReason::Stop);
  EXPECT_EQ(r.choices[0].text, ", and the ti");
  EXPECT_EQ(streamed, r.choices[0].text);
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(tok().decode(r.tokens), ", and the time of") << "tokens run up to the one completing the stop";
}

TEST(GenerateStop, StreamedPiecesAddUpToTheTextAtTheEndToo) {
  const std::vector<TokenId> prompt = tok().encode("The meaning of life is");
  GenerateOptions o;
  o.max_new_tokens = 30;
  o.sampling.temperature = 1.0f;
  o.seed = 5;
  o.stop_at_eos = false;
  o.stop = {"zzzz-never", "\n\n\n\n"};
  std::string streamed;
  const auto r = generate(mini(), &tok(), prompt, o, [&](const StreamEvent& e) {
    streamed += e.text;
    return true;
  });
  EXPECT_EQ(r.finish_reason, FinishReason::Length);
  EXPECT_EQ(streamed, r.choices[0].text);
  EXPECT_EQ(r.choices[0].text, tok().decode(r.tokens));
}

TEST(GenerateStop, CancellingFromTheCallbackStopsWithItsReason) {
  GenerateOptions o;
  o.max_new_tokens = 30;
  o.sampling.greedy = true;
  int events = 0;
  const auto r = generate(mini(), &tok(), tok().encode("Once upon a time"), o, [&](const StreamEvent& e) {
    ++events;
    return e.token.has_value() && events < 5;
  });
  EXPECT_EQ(r.finish_reason, FinishReason::Cancelled);
  EXPECT_EQ(r.tokens.size(), 5u);
}

TEST(GenerateStop, CliStopFlagUnderstandsEscapesAndReportsStop) {
  const auto r = test::run_cli({"-q", "generate", "-p", "Once upon a time", "-n", "40", "--greedy", "--json",
                                "--stop", "me of", "--stop", "\\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["text"], ", and the ti");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

}  // namespace
}  // namespace gptneo
