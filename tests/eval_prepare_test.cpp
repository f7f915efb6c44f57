// Converters of the published data sets and the harness's text
// preprocessing. Expected strings were produced by running the harness's own
// functions (preprocess_wikitext.py, hellaswag utils.py, the
// wikitext_document_level page splitter) under CPython on the same inputs.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/prepare.h"
#include "eval/text.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"
#include "test_support.h"

namespace gptneo::eval {
namespace {

using test::TempDir;
using test::write_file;

const std::string kWikiRaw =
    " = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . He had a guest "
    "@-@ starring role in 2000 ( \" The Bill \" ) , and 1 @,@ 000 @.@ 5 votes ; he was N years old . \n = = Career "
    "= = \n \n In 2006 , Boulter ' s role [ citation ] was 45 \xC2\xB0 C . The actors ' roles were ' minor ' /' 3/ "
    "ok \n = Second Page = \n \n It is { a } test !  Really ? Yes : no \n";

TEST(EvalText, PythonStringSemantics) {
  EXPECT_EQ(python_word_count(""), 1);  // len(re.split(r"\s+", "")) == 1
  EXPECT_EQ(python_word_count(" a  b\t\nc "), 5);  // ['', 'a', 'b', 'c', '']
  EXPECT_EQ(python_word_count("a\xC2\xA0" "b"), 2);  // U+00A0 is \s for a str pattern
  EXPECT_EQ(code_points("caf\xC3\xA9"), 4);
  EXPECT_EQ(python_strip("\xE2\x80\x83 x y \n"), "x y");  // U+2003 EM SPACE
  EXPECT_EQ(python_rstrip("x \xE3\x80\x80"), "x");         // U+3000
  EXPECT_EQ(ascii_capitalize("hELLO wORLD"), "Hello world");
  EXPECT_EQ(replace_all("aaaa", "aa", "b"), "bb");
}

TEST(EvalPrepare, WikitextPagesAndDetokenizer) {
  const auto pages = wikitext_pages(kWikiRaw);
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_TRUE(pages[0].starts_with(" = Robert Boulter = \n"));
  EXPECT_TRUE(pages[0].ends_with("/' 3/ ok "));  // a "= = Career = =" heading does not start a page
  EXPECT_EQ(pages[1], " = Second Page = \n \n It is { a } test !  Really ? Yes : no \n");
  EXPECT_EQ(wikitext_detokenize(pages[0]),
            " = Robert Boulter =\n\nRobert Boulter is an English film, television and theatre actor. He had a "
            "guest-starring role in 2000 (\"The Bill\"), and 1,000.5 votes; he was 1 years old.\n== Career ==\n\nIn "
            "2006, Boulter's role [citation] was 45\xC2\xB0" "C. The actors' roles were 'minor' /'[0-9]/ ok ");
  EXPECT_EQ(wikitext_detokenize(pages[1]), " = Second Page =\n\nIt is {a} test!  Really? Yes: no\n");
  EXPECT_EQ(wikitext_detokenize("a \"b\" \"c \xC2\xA0"), "a \"b\" \"c \xC2\xA0");  // an unclosed quote stays
}

TEST(EvalPrepare, WikitextTaskFileCountsTheOriginalPage) {
  TempDir dir;
  write_file(dir / "wiki.test.raw", kWikiRaw);
  std::string jsonl;
  const std::vector<std::filesystem::path> files = {dir / "wiki.test.raw"};
  EXPECT_EQ(prepare_dataset("wikitext", files, jsonl), TaskKind::Perplexity);
  const Task task = parse_task(TaskKind::Perplexity, jsonl, "wikitext", "wikitext.jsonl");
  ASSERT_EQ(task.docs.size(), 2u);
  EXPECT_EQ(task.docs[0].words, 79);  // len(re.split(r"\s+", page)) of the page before detokenizing
  EXPECT_EQ(task.docs[0].bytes, 318);
  EXPECT_EQ(task.docs[1].words, 18);
  EXPECT_EQ(task.docs[1].bytes, 60);
  EXPECT_EQ(task.docs[1].text, " = Second Page =\n\nIt is {a} test!  Really? Yes: no\n");
}

TEST(EvalPrepare, HellaswagPreprocess) {
  EXPECT_EQ(hellaswag_preprocess("  Making a cake: [header] Preheat the oven [title] Mix flour.  Stir [step] well\n [x]  "),
            "Making a cake: Preheat the oven. Mix flour. Stir well\n ");
  EXPECT_EQ(hellaswag_preprocess("A [b\nc] d [e] f"), "A [b\nc] d f");  // "." stops at a newline
}

TEST(EvalPrepare, HellaswagPiqaWinograndeLambada) {
  TempDir dir;
  write_file(dir / "hs.jsonl",
             R"({"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "ctx_b": "then", "endings": [", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."], "label": 3})"
             "\n");
  write_file(dir / "piqa.jsonl", "{\"goal\": \"How do I ready a guinea pig cage?\", \"sol1\": \"Fill it with shavings\", \"sol2\": \"Fill it with jelly\"}\n"
                                 "{\"goal\": \"dresser\", \"sol1\": \"replace a drawer\", \"sol2\": \"eat a drawer\"}\n");
  write_file(dir / "piqa-labels.lst", "0\n1\n");
  write_file(dir / "wg.jsonl",
             R"({"qID": "x", "sentence": "Sarah was a much better surgeon than Maria so _ always got the harder cases.", "option1": "Sarah", "option2": "Maria", "answer": "1"})"
             "\n");
  write_file(dir / "lambada.jsonl", "{\"text\": \"a b c\"}\n");

  auto prepare = [&](const char* name, std::vector<std::filesystem::path> files) {
    std::string jsonl;
    prepare_dataset(name, files, jsonl);
    return jsonl;
  };
  const auto hs = nlohmann::json::parse(prepare("hellaswag", {dir / "hs.jsonl"}));
  EXPECT_EQ(hs["context"], "Removing ice from car: Then, the man writes over the snow covering the window of a car, "
                           "and a woman wearing winter clothes smiles. Then");
  EXPECT_EQ(hs["choices"][3], ", the man continues removing the snow on his car.");
  EXPECT_EQ(hs["gold"], 3);

  const std::string piqa = prepare("piqa", {dir / "piqa.jsonl", dir / "piqa-labels.lst"});
  const Task p = parse_task(TaskKind::MultipleChoice, piqa, "piqa", "piqa");
  ASSERT_EQ(p.choices.size(), 2u);
  EXPECT_EQ(p.choices[0].contexts[0], "Question: How do I ready a guinea pig cage?\nAnswer:");
  EXPECT_EQ(p.choices[0].continuations[1], " Fill it with jelly");  // the harness's " " delimiter
  EXPECT_EQ(p.choices[0].lengths[1], 18.0);  // len(choice), delimiter excluded
  EXPECT_EQ(p.choices[1].gold, 1);
  EXPECT_THROW(prepare("piqa", {dir / "piqa.jsonl"}), Error);
  write_file(dir / "short.lst", "0\n");
  EXPECT_THROW(prepare("piqa", {dir / "piqa.jsonl", dir / "short.lst"}), Error);

  const Task w = parse_task(TaskKind::MultipleChoice, prepare("winogrande", {dir / "wg.jsonl"}), "wg", "wg");
  ASSERT_EQ(w.choices.size(), 1u);
  EXPECT_FALSE(w.has_acc_norm);
  EXPECT_EQ(w.choices[0].contexts[0], "Sarah was a much better surgeon than Maria so Sarah");
  EXPECT_EQ(w.choices[0].contexts[1], "Sarah was a much better surgeon than Maria so Maria");
  EXPECT_EQ(w.choices[0].continuations[0], " always got the harder cases.");
  EXPECT_EQ(w.choices[0].continuations[1], " always got the harder cases.");
  EXPECT_EQ(w.choices[0].gold, 0);

  EXPECT_EQ(prepare("lambada_openai", {dir / "lambada.jsonl"}), "{\"text\":\"a b c\"}\n");
  EXPECT_THROW(prepare("squad", {dir / "lambada.jsonl"}), Error);
  EXPECT_THROW(prepare("hellaswag", {dir / "missing.jsonl"}), Error);
}

TEST(EvalTaskFile, ShapesAndErrors) {
  const Task mc = parse_task(TaskKind::MultipleChoice,
                             "{\"context\": \"Q\", \"choices\": [\"a\", \"bb\"], \"gold\": 1, \"delimiter\": \"\"}\n\n",
                             "t", "t.jsonl");
  EXPECT_EQ(mc.choices[0].continuations[0], "a");
  EXPECT_TRUE(mc.has_acc_norm);
  // acc_norm divides by characters (Python's len), acc_bytes by UTF-8 bytes.
  const Task accented = parse_task(TaskKind::MultipleChoice,
                                   "{\"context\": \"Q\", \"choices\": [\"caf\u00e9\", \"cafe\"], \"gold\": 0}", "t", "t.jsonl");
  EXPECT_EQ(accented.choices[0].lengths, (std::vector<double>{4, 4}));
  EXPECT_EQ(accented.choices[0].byte_lengths, (std::vector<double>{5, 4}));
  const Task docs = parse_task(TaskKind::Perplexity, "{\"text\": \"one two  three\"}\n{\"text\": \"x\", \"words\": 7, \"bytes\": 9}",
                               "t", "t.jsonl");
  EXPECT_EQ(docs.docs[0].words, 3);
  EXPECT_EQ(docs.docs[0].bytes, 14);
  EXPECT_EQ(docs.docs[1].words, 7);
  const Task limited = parse_task(TaskKind::Lambada, "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n", "t", "t", 2);
  EXPECT_EQ(limited.size(), 2);

  auto error_of = [](TaskKind kind, const std::string& text) {
    try {
      parse_task(kind, text, "t", "f.jsonl");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(TaskKind::Lambada, "{\"text\": \"a\"}\n{\"txt\": \"b\"}"), "f.jsonl line 2: missing field \"text\"");
  EXPECT_EQ(error_of(TaskKind::MultipleChoice, "{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"gold\": 2}"),
            "f.jsonl line 1: \"gold\" is 2 but there are 2 choices");
  EXPECT_EQ(error_of(TaskKind::Pairs, "{\"more\": \"a\", \"less\": \"b\"}"), "f.jsonl line 1: missing field \"category\"");
  EXPECT_EQ(error_of(TaskKind::Lambada, ""), "f.jsonl: no examples");
  EXPECT_NE(error_of(TaskKind::Lambada, "{text}").find("f.jsonl line 1: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(TaskKind::MultipleChoice,
                     "{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"gold\": 0}\n"
                     "{\"contexts\": [\"a\", \"b\"], \"continuation\": \"c\", \"gold\": 0}")
                .find("line 2: examples mix"),
            std::string::npos);
  EXPECT_THROW(load_task(TaskKind::Lambada, "/nonexistent/task.jsonl"), Error);
}

}  // namespace
}  // namespace gptneo::eval
