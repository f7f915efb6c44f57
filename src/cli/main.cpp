// gptneo: the command-line tool. Each subcommand lives in its own file
// (cmd_*.cpp); this file only wires them up and turns errors into a one-line
// message and a non-zero exit code.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "core/progress.h"
#include "gptneo/error.h"

int main(int argc, char** argv) {
  CLI::App app{"gptneo: GPT-Neo language models in C++ (generate, score, perplexity, tokenize)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-q) may follow the subcommand
  app.set_version_flag("--version", std::string("gptneo ") + GPTNEO_VERSION_STRING);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "no progress output on stderr");
  app.parse_complete_callback([&] { gptneo::Progress::set_enabled(!quiet); });

  gptneo::cli::add_generate_command(app);
  gptneo::cli::add_chat_command(app);
  gptneo::cli::add_score_command(app);
  gptneo::cli::add_perplexity_command(app);
  gptneo::cli::add_tokenize_commands(app);
  gptneo::cli::add_convert_command(app);
  gptneo::cli::add_bench_command(app);
  gptneo::cli::add_quantize_command(app);
  gptneo::cli::add_serve_command(app);
  gptneo::cli::add_train_command(app);
  gptneo::cli::add_plot_command(app);
  gptneo::cli::add_eval_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const gptneo::Error& e) {
    std::fprintf(stderr, "gptneo: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "gptneo: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gptneo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
