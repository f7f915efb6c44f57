// A progress line on stderr for long work (loading, evaluation, training):
//   perplexity [########............]  3/8 windows  4.1 s  ETA 6.8 s
// redrawn in place on a terminal; on a pipe or file, one line at most every
// few seconds and a final line, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gptneo {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();
  // Reports `done` of `total` units; `extra` is appended (e.g. "loss 3.21").
  void update(int64_t done, const std::string& extra = "");
  // Prints the final state and ends the line.
  void finish(const std::string& extra = "");
  // Turns all progress output of this process off (--quiet).
  static void set_enabled(bool enabled);

 private:
  void draw(bool final, const std::string& extra);

  std::string label_, unit_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace gptneo
