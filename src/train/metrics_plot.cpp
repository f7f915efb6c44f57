#include "train/metrics_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gptneo/error.h"

namespace gptneo::training {

std::vector<Series> read_loss_series(const std::filesystem::path& metrics, const std::string& label) {
  std::ifstream in(metrics);
  if (!in) throw Error(fmt::format("cannot read {}", metrics.string()));
  Series train{label + " train", {}, false}, val{label + " val", {}, true};
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;
    const double step = j["step"].get<double>();
    if (j.contains("loss") && j["loss"].is_number()) train.points.emplace_back(step, j["loss"].get<double>());
    if (j.contains("val_loss") && j["val_loss"].is_number()) val.points.emplace_back(step, j["val_loss"].get<double>());
  }
  std::vector<Series> out;
  if (!train.points.empty()) out.push_back(std::move(train));
  if (!val.points.empty()) out.push_back(std::move(val));
  if (out.empty()) throw Error(fmt::format("{} holds no \"loss\" or \"val_loss\" values", metrics.string()));
  return out;
}

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about 6 of them.
std::vector<double> ticks(double lo, double hi) {
  const double raw = (hi - lo) / 6;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string format_tick(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e7) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.3g}", v);
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

}  // namespace

std::string render_svg(const std::vector<Series>& series, const std::string& title, const std::string& x_label,
                       const std::string& y_label) {
  const double W = 800, Hh = 500, left = 70, right = 20, top = 40, bottom = 55;
  const double pw = W - left - right, ph = Hh - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) throw Error("nothing to plot");
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto sx = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, Hh);
  svg += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n", W / 2, escape(title));
  for (const double t : ticks(y0, y1)) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>\n", left, sy(t),
                       left + pw, sy(t));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, sy(t) + 4, format_tick(t));
  }
  for (const double t : ticks(x0, x1)) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>\n", sx(t), top,
                       sx(t), top + ph);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", sx(t), top + ph + 18,
                       format_tick(t));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top, pw, ph);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + pw / 2, Hh - 12, escape(x_label));
  svg += fmt::format("<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>\n",
                     top + ph / 2, top + ph / 2, escape(y_label));

  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* color = kColors[i % std::size(kColors)];
    std::string path;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", sx(x), sy(y));
    }
    svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n", path, color,
                       s.markers ? 1.5 : 1.2, s.markers ? " stroke-dasharray=\"5,3\"" : "");
    if (s.markers)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(y))
          svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", sx(x), sy(y), color);
    const double ly = top + 16 + 18 * static_cast<double>(i);
    svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>\n", left + pw - 190,
                       ly - 4, left + pw - 165, ly - 4, color);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left + pw - 158, ly, escape(s.label));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace gptneo::training
