// Data-parallel training under mpirun (2 ranks over loopback) follows the
// same loss curve as one process with the same global batch.
#include <cstdlib>
#include <sstream>

#include <gtest/gtest.h>

#include "test_support.h"
#include "train/data.h"
#include "train/distributed.h"
#include "train/params.h"

namespace gptneo::training {
namespace {

namespace fs = std::filesystem;

std::vector<double> losses(const fs::path& metrics) {
  std::vector<double> out;
  std::istringstream in(test::read_file(metrics));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["loss"].is_number()) out.push_back(j["loss"].get<double>());
  }
  return out;
}

TEST(TrainMpi, TwoRanksFollowTheSingleProcessLossCurve) {
  if (!Comm::compiled_with_mpi()) GTEST_SKIP() << "gptneo was built without MPI";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun is not installed";
  test::TempDir tmp;
  std::vector<int32_t> ids;
  Rng rng(5);
  for (int i = 0; i < 2000; ++i) ids.push_back(rng.below(8) == 0 ? static_cast<int32_t>(rng.below(256)) : (i * 5) % 37);
  write_token_file(tmp / "data.tokens", 1, ids);
  const fs::path init = test::data_dir() / "train-tiny" / "init";
  auto args = [&](const fs::path& out) {
    return "train --init " + init.string() + " --data " + (tmp / "data.tokens").string() + " --out " + out.string() +
           " --steps 6 --batch 8 --accum 2 --seq 16 --lr 1e-2 --eval-rows 8 --threads 1 -q";
  };
  // Under LeakSanitizer (the sanitizer build of CI), OpenMPI's own
  // allocations that it never frees would fail the run: only ours are checked.
  const std::string no_leak_check = "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 ";
  const std::string cli = GPTNEO_CLI;
  ASSERT_EQ(std::system((no_leak_check + cli + " " + args(tmp / "one") + " 2> " + (tmp / "one.log").string()).c_str()), 0)
      << test::read_file(tmp / "one.log");
  // As root, OpenMPI wants both variables; --oversubscribe allows 2 ranks on fewer cores.
  const std::string mpirun =
      no_leak_check + "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp " +
      "mpirun -np 2 --oversubscribe --bind-to none -x ASAN_OPTIONS ";
  const int rc = std::system((mpirun + cli + " " + args(tmp / "two") + " > " + (tmp / "two.log").string() + " 2>&1").c_str());
  ASSERT_EQ(rc, 0) << test::read_file(tmp / "two.log");

  const auto one = losses(tmp / "one" / "metrics.jsonl"), two = losses(tmp / "two" / "metrics.jsonl");
  ASSERT_EQ(one.size(), 6u);
  ASSERT_EQ(two.size(), one.size()) << "rank 0 alone writes the metrics";
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(two[i], one[i], 1e-5 * one[i]) << "step " << i + 1;
  EXPECT_TRUE(fs::exists(tmp / "two" / "step-6" / "model.safetensors"));
}

}  // namespace
}  // namespace gptneo::training
