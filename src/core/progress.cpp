#include "core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include <fmt/format.h>

namespace gptneo {

namespace {
std::atomic<bool> g_enabled{true};
constexpr int kBarWidth = 24;
}  // namespace

void Progress::set_enabled(bool enabled) { g_enabled = enabled; }

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0 && tty_ && g_enabled) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, const std::string& extra) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // The final state is drawn by finish(); intermediate ones are rate-limited.
  if (since < (tty_ ? 0.1 : 5.0) || (total_ > 0 && done >= total_)) return;
  last_draw_ = now;
  draw(false, extra);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  draw(true, extra);
  finished_ = true;
}

void Progress::draw(bool final, const std::string& extra) {
  if (!g_enabled) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = label_;
  if (total_ > 0) {
    const int filled = static_cast<int>(kBarWidth * std::min<int64_t>(done_, total_) / total_);
    line += fmt::format(" [{}{}] {}/{} {}", std::string(filled, '#'), std::string(kBarWidth - filled, '.'), done_,
                        total_, unit_);
  } else {
    line += fmt::format(" {} {}", done_, unit_);
  }
  line += fmt::format("  {:.1f} s", elapsed);
  if (!final && total_ > 0 && done_ > 0 && done_ < total_)
    line += fmt::format("  ETA {:.1f} s", elapsed * double(total_ - done_) / double(done_));
  if (!extra.empty()) line += "  " + extra;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace gptneo
