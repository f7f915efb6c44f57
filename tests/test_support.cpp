#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/dtype.h"

namespace gptneo::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() /
          ("gptneo-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename(), fs::copy_options::overwrite_existing);
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_file(path)); }

std::vector<int64_t> ints(const TensorView& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  if (t.dtype != DType::I64) throw std::runtime_error(t.name + " is not I64");
  if (!out.empty()) std::memcpy(out.data(), t.data, out.size() * 8);
  return out;
}

std::vector<double> doubles(const TensorView& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  if (out.empty()) return out;  // an empty tensor may have no data pointer
  if (t.dtype == DType::F64) {
    std::memcpy(out.data(), t.data, out.size() * 8);
  } else {
    std::vector<float> f(out.size());
    convert_to_f32(t.dtype, t.data, f.size(), f.data());
    for (size_t i = 0; i < f.size(); ++i) out[i] = f[i];
  }
  return out;
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text) {
  TempDir tmp;
  std::string cmd = shell_quote(GPTNEO_CLI);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const fs::path in_file = tmp / "stdin", err_file = tmp / "stderr";
  write_file(in_file, stdin_text);
  cmd += " <" + shell_quote(in_file.string()) + " 2>" + shell_quote(err_file.string());
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.err = read_file(err_file);
  return r;
}

}  // namespace gptneo::test
