// gptneo bench and the GPTNEO_ISA override, through the CLI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/kernel_set.h"
#include "kernels/kernels.h"
#include "test_support.h"

namespace gptneo {
namespace {

TEST(BenchCli, RandomModelReportsEveryKey) {
  const auto r = test::run_cli({"bench", "--random", "gpt-neo-tiny", "--prompt", "9", "--gen", "3", "--batch", "2",
                                "--dtype", "q8", "--threads", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"prefill_tok_s", "decode_tok_s", "weight_bytes_per_token", "peak_rss_bytes", "isa"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_GT(j["prefill_tok_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_EQ(j["isa"], kernels::isa_name());
  EXPECT_EQ(j["batch"], 2);
  // q8 of a 64-wide model: 34 bytes per 32 weights, about a quarter of f32.
  EXPECT_LT(j["weight_bytes_per_token"].get<double>(), 50257 * 64 * 1.1 + 2e6);
  EXPECT_NE(j["weights"].get<std::string>().find("q8 weights"), std::string::npos);
}

TEST(BenchCli, AnF16KvCacheHoldsHalfTheBytes) {
  std::vector<int64_t> bytes;
  for (const char* kv : {"f32", "f16"}) {
    const auto r = test::run_cli({"bench", "--random", "gpt-neo-tiny", "--prompt", "9", "--gen", "3", "--batch", "2",
                                  "--kv-cache", kv, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["kv_cache_format"], kv);
    EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
    bytes.push_back(j["kv_cache_bytes"].get<int64_t>());
  }
  EXPECT_EQ(bytes[0], 2 * bytes[1]);
}

// Without --kv-cache (or with auto) the caches follow the weights: f32 with
// f32, f16 with q8.
TEST(BenchCli, TheKvCacheFormatFollowsTheWeightsByDefault) {
  for (const auto& [dtype, kv] : {std::pair{"f32", "f32"}, std::pair{"q8", "f16"}, std::pair{"bf16", "f16"}}) {
    for (const bool named_auto : {false, true}) {
      std::vector<std::string> args = {"bench", "--random", "gpt-neo-tiny", "--prompt", "5", "--gen", "2",
                                       "--dtype", dtype, "--json"};
      if (named_auto) args.insert(args.end(), {"--kv-cache", "auto"});
      const auto r = test::run_cli(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache_format"], kv) << dtype;
    }
  }
}

TEST(BenchCli, BandwidthModeMeasuresTheMachine) {
  const auto r = test::run_cli({"bench", "--bandwidth", "--bandwidth-mb", "32", "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["read_bandwidth_bytes_s"].get<double>(), 1e8);
  EXPECT_GT(j["f32_flops_s"].get<double>(), 1e8);
}

TEST(BenchCli, TokenizeModeReportsSpeedsAndChecksIds) {
  const auto r = test::run_cli({"bench", "--tokenize", (test::data_dir() / "corpus-val.txt").string(), "--tokenizer",
                                test::tokenizer_dir().string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["encode_mb_s"].get<double>(), 0);
  EXPECT_GT(j["decode_mb_s"].get<double>(), 0);
  EXPECT_GT(j["tokens"].get<int64_t>(), 1000);
}

TEST(BenchCli, BadRequestsGiveClearErrors) {
  auto r = test::run_cli({"bench"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("-m DIR or --random NAME"), std::string::npos) << r.err;
  r = test::run_cli({"bench", "--random", "gpt-neo-9B"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown --random model"), std::string::npos) << r.err;
  r = test::run_cli({"bench", "--random", "gpt-neo-tiny", "--dtype", "q3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown --dtype"), std::string::npos) << r.err;
}

TEST(BenchCli, IsaOverrideIsHonouredOrRefusedClearly) {
  const std::vector<std::string> args = {"bench", "--random", "gpt-neo-tiny", "--prompt", "4", "--gen", "1", "--json"};
  ::setenv("GPTNEO_ISA", "scalar", 1);
  auto r = test::run_cli(args);
  ::setenv("GPTNEO_ISA", "sse9", 1);
  const auto bad = test::run_cli(args);
  ::setenv("GPTNEO_ISA", "avx512", 1);
  const auto avx512 = test::run_cli(args);
  ::unsetenv("GPTNEO_ISA");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["isa"], "scalar");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("GPTNEO_ISA"), std::string::npos) << bad.err;
  if (kernels::cpu_supports(kernels::Isa::Avx512)) {
    EXPECT_EQ(avx512.exit_code, 0) << avx512.err;
  } else {
    EXPECT_NE(avx512.exit_code, 0);
    EXPECT_NE(avx512.err.find("does not support the avx512 kernels"), std::string::npos) << avx512.err;
  }
}

// q8 prompts run on the int8 dot products where the kernel set takes prompts
// in int8 (AVX512-VNNI), and are measured against that peak; elsewhere they
// are widened to float32 and measured against the FMA peak.
TEST(BenchCli, QuantizedPromptsAreMeasuredAgainstThePeakOfTheirProducts) {
  const auto r = test::run_cli({"bench", "--random", "gpt-neo-tiny", "--dtype", "q8", "--prompt", "40", "--gen", "2",
                                "--limits", "--bandwidth-mb", "64", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  if (kernels::int8_products(40) && kernels::active().int8_dot_loop) {
    EXPECT_EQ(j["prefill_peak"], "int8");
    EXPECT_GT(j["int8_ops_s"].get<double>(), j["f32_flops_s"].get<double>());
  } else {
    EXPECT_EQ(j["prefill_peak"], "f32");
  }
  EXPECT_GT(j["prefill_fraction_of_fma_peak"].get<double>(), 0);
}

TEST(BenchCli, EmulatedAvx512KernelsRunWhereTheBuildHasThem) {
  ::setenv("GPTNEO_ISA", "avx512-emulated", 1);
  // bf16 weights and a 16-token prompt: the prefill runs on the bf16 dot
  // products, and is measured against their peak.
  const auto r = test::run_cli({"bench", "--random", "gpt-neo-tiny", "--dtype", "bf16", "--prompt", "16", "--gen",
                                "2", "--limits", "--bandwidth-mb", "64", "--json"});
  ::unsetenv("GPTNEO_ISA");
  if (kernels::cpu_supports(kernels::Isa::Avx512Emulated)) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["isa"], "avx512-emulated");
    EXPECT_EQ(j["prefill_peak"], "bf16");
    EXPECT_GT(j["bf16_flops_s"].get<double>(), 0);
  } else {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("avx512-emulated"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace gptneo
