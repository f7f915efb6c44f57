// Tokenizer throughput (Google Benchmark). Reports bytes/s of encode() on
// one thread, of encode_parallel(), of encode() on one long word, and of
// decode().
//
// Text: the file named by $GPTNEO_BENCH_TEXT when set (e.g. the first 20 MB
// of the reference corpus: `xz -dc corpus.txt.xz | head -c 20000000`),
// otherwise the tokenizer golden texts repeated to 8 MB.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "gptneo/tokenizer.h"

namespace {

const std::filesystem::path kTokenizerDir =
    std::filesystem::path(__FILE__).parent_path().parent_path() / "tests" / "data" / "tokenizer";

const gptneo::Tokenizer& tokenizer() {
  static const gptneo::Tokenizer tok = gptneo::Tokenizer::load(kTokenizerDir);
  return tok;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return std::move(buffer).str();
}

const std::string& bench_text() {
  static const std::string text = [] {
    std::string result;
    if (const char* path = std::getenv("GPTNEO_BENCH_TEXT")) {
      result = read_file(path);
    } else {
      const auto golden = nlohmann::json::parse(read_file(kTokenizerDir / "tokenizer.golden.json"));
      std::string once;
      for (const auto& entry : golden) once += entry.at("text").get<std::string>() + "\n";
      while (result.size() < (size_t{8} << 20)) result += once;
    }
    // A file cut at an arbitrary byte may end inside a character.
    result.resize(gptneo::utf8_complete_prefix(result));
    return result;
  }();
  return text;
}

void BM_EncodeOneThread(benchmark::State& state) {
  const std::string& text = bench_text();
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer().encode(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeOneThread)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EncodeParallel(benchmark::State& state) {
  const std::string& text = bench_text();
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer().encode_parallel(text, threads));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeParallel)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EncodeOneLongWord(benchmark::State& state) {
  const std::string word(static_cast<size_t>(state.range(0)), 'a');
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer().encode(word));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * word.size()));
}
BENCHMARK(BM_EncodeOneLongWord)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const std::vector<gptneo::TokenId> ids = tokenizer().encode(bench_text());
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer().decode(ids));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bench_text().size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

}  // namespace
