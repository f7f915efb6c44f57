// gptneo plot: loss curves of training runs (OUT/metrics.jsonl) as an SVG.
#include <fmt/format.h>

#include "cli/common.h"
#include "gptneo/error.h"
#include "train/files.h"
#include "train/metrics_plot.h"

namespace gptneo::cli {

void add_plot_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> files;
    std::vector<std::string> labels;
    std::string out = "loss.svg", title = "Loss";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw the training and validation loss of metrics.jsonl files as SVG");
  cmd->add_option("metrics", a->files, "metrics.jsonl files written by gptneo train")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->out, "the SVG file to write")->default_val("loss.svg");
  cmd->add_option("--label", a->labels, "one label per file (default: the file's folder name)");
  cmd->add_option("--title", a->title, "title of the chart")->default_val("Loss");
  cmd->callback([a] {
    if (!a->labels.empty() && a->labels.size() != a->files.size())
      throw Error(fmt::format("{} --label values for {} files", a->labels.size(), a->files.size()));
    std::vector<training::Series> series;
    for (size_t i = 0; i < a->files.size(); ++i) {
      const std::filesystem::path p(a->files[i]);
      std::string label = a->labels.empty() ? p.parent_path().filename().string() : a->labels[i];
      if (label.empty()) label = p.stem().string();
      for (auto& s : training::read_loss_series(p, label)) series.push_back(std::move(s));
    }
    training::write_text_atomic(a->out, training::render_svg(series, a->title, "step", "loss (nats/token)"));
    fmt::print("wrote {}: {} curve(s)\n", a->out, series.size());
  });
}

}  // namespace gptneo::cli
