// Loss curves of training runs as a self-contained SVG image (gptneo plot).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace gptneo::training {

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (step, value)
  bool markers = false;                           // dots at the points (sparse series)
};

// The training loss ("loss") and validation loss ("val_loss") of one
// metrics.jsonl, labelled "<label> train" / "<label> val". Lines that are
// not JSON objects or lack the fields are skipped; throws when the file
// cannot be read or holds no loss at all.
std::vector<Series> read_loss_series(const std::filesystem::path& metrics, const std::string& label);

// A line chart of the series: axes with round tick values, a legend.
std::string render_svg(const std::vector<Series>& series, const std::string& title, const std::string& x_label,
                       const std::string& y_label);

}  // namespace gptneo::training
