// gptneo tokenize / detokenize: text to token ids and back.
#include "cli/common.h"
#include "gptneo/error.h"

namespace gptneo::cli {

void add_tokenize_commands(CLI::App& app) {
  struct Args {
    ModelOptions model;
    std::string text, file, ids;
    bool has_text = false;
  };
  auto targs = std::make_shared<Args>();
  CLI::App* tok = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  tok->add_option("-m,--model", targs->model.model_dir, "model folder holding the tokenizer files");
  tok->add_option("--tokenizer", targs->model.tokenizer_path, "tokenizer.json, vocab.json, or a folder");
  auto* p = tok->add_option("-p,--prompt", targs->text, "the text");
  tok->add_option("-f,--file", targs->file, "a file holding the text")->excludes(p);
  tok->callback([targs, p] {
    if (p->count() == 0 && targs->file.empty()) throw Error("give the text: -p TEXT or -f FILE");
    const std::string text = p->count() ? targs->text : read_text_file(targs->file);
    print_json(targs->model.load_tokenizer().encode(text));
  });

  auto dargs = std::make_shared<Args>();
  CLI::App* detok = app.add_subcommand("detokenize", "Print the text of a list of token ids");
  detok->add_option("-m,--model", dargs->model.model_dir, "model folder holding the tokenizer files");
  detok->add_option("--tokenizer", dargs->model.tokenizer_path, "tokenizer.json, vocab.json, or a folder");
  detok->add_option("--ids", dargs->ids, "token ids, e.g. 1,2,3")->required();
  detok->callback([dargs] { print_text(dargs->model.load_tokenizer().decode(parse_ids(dargs->ids))); });
}

}  // namespace gptneo::cli
