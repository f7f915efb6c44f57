// gptneo score: per-token negative log-likelihoods and argmax of a sequence.
#include "cli/common.h"
#include "gptneo/error.h"
#include "gptneo/scoring.h"

namespace gptneo::cli {

void add_score_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    std::string ids;
    std::string text;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "score", "Print {\"nll\": [...], \"argmax\": [...]}: the next-token NLL at each position but the last, "
               "and the most likely next token at every position");
  args->model.add_to(*cmd);
  auto* ids = cmd->add_option("--ids", args->ids, "the sequence as token ids, e.g. 1,2,3");
  cmd->add_option("-p,--prompt", args->text, "the sequence as text (needs a tokenizer)")->excludes(ids);
  cmd->callback([args] {
    if (args->ids.empty() && args->text.empty()) throw Error("give the sequence: --ids 1,2,3 or -p TEXT");
    std::vector<TokenId> tokens;
    if (!args->ids.empty()) {
      tokens = parse_ids(args->ids);
    } else {
      tokens = args->model.load_tokenizer().encode(args->text);
      if (tokens.empty()) throw Error("the text is empty: nothing to score");
    }
    auto model = args->model.load_model();
    const TokenScores s = score_tokens(*model, tokens);
    nlohmann::json j;
    j["nll"] = s.nll;
    j["argmax"] = s.argmax;
    if (args->ids.empty()) j["tokens"] = tokens;
    print_json(j);
  });
}

}  // namespace gptneo::cli
