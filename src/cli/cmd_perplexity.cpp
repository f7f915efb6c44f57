// gptneo perplexity: sliding-window perplexity of a text file.
#include <cstdio>

#include <fmt/format.h>

#include "cli/common.h"
#include "core/progress.h"
#include "gptneo/error.h"
#include "gptneo/scoring.h"

namespace gptneo::cli {

void add_perplexity_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    std::string file;
    int64_t context = 0, stride = 0, windows = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a text file (sliding windows)");
  args->model.add_to(*cmd);
  cmd->add_option("-f,--file", args->file, "the text file (tokenized as one text)")->required();
  cmd->add_option("--context", args->context, "tokens per window (default: the model's maximum)")->check(CLI::PositiveNumber);
  cmd->add_option("--stride", args->stride, "a window starts every N tokens (default: = context)")->check(CLI::PositiveNumber);
  cmd->add_option("--windows", args->windows, "use only the first K windows")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "print {\"perplexity\": x, \"tokens_scored\": n, ...}");
  cmd->callback([args] {
    const std::string text = read_text_file(args->file);
    const Tokenizer tok = args->model.load_tokenizer();
    auto model = args->model.load_model();
    const std::vector<TokenId> tokens = tok.encode(text);
    PerplexityOptions options;
    options.context = args->context;
    options.stride = args->stride;
    options.max_windows = args->windows;
    std::optional<Progress> bar;
    options.progress = [&](int64_t done, int64_t total) {
      if (!bar) bar.emplace("perplexity", total, "windows");
      bar->update(done);
    };
    const PerplexityResult r = perplexity(*model, tokens, options);
    if (bar) bar->finish();
    if (args->json) {
      print_json({{"perplexity", r.perplexity},
                  {"tokens_scored", r.tokens_scored},
                  {"windows", r.windows},
                  {"mean_nll", r.nll_sum / double(r.tokens_scored)},
                  {"tokens_in_file", tokens.size()}});
    } else {
      std::printf("perplexity %.6f  (%lld tokens scored in %lld windows; mean NLL %.6f)\n", r.perplexity,
                  static_cast<long long>(r.tokens_scored), static_cast<long long>(r.windows),
                  r.nll_sum / double(r.tokens_scored));
    }
  });
}

}  // namespace gptneo::cli
