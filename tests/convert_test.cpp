// gptneo convert / convert_model / save_model: any folder gptneo reads ->
// a plain Hugging Face safetensors folder that loads with identical logits.
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "gptneo/convert.h"
#include "gptneo/error.h"
#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace gptneo {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

fs::path neo_tiny_bin_dir() { return test::data_dir() / "neo-tiny-bin"; }
fs::path gptj_dir() { return test::data_dir() / "gptj-tiny"; }

std::vector<float> logits_of(const fs::path& dir, const std::vector<TokenId>& ids) {
  const auto model = Model::load(dir);
  KVCache cache = model->new_cache(static_cast<int64_t>(ids.size()));
  const SequenceChunk chunk{&cache, ids, true};
  return model->forward({&chunk, 1}).data;
}

const std::vector<TokenId> kIds = {464, 3290, 318, 257, 1332, 13, 50256, 11};

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  const Checkpoint ck = Checkpoint::open(dir);
  for (const auto& [name, v] : ck.tensors()) out.push_back(name);
  return out;
}

TEST(Convert, BinToSafetensorsGivesIdenticalLogitsAndDropsBuffers) {
  TempDir d;
  const fs::path out = d / "neo";
  const SaveResult r = convert_model(neo_tiny_bin_dir(), out);
  EXPECT_EQ(r.files, (std::vector<std::string>{"model.safetensors", "config.json", "generation_config.json"}));
  EXPECT_EQ(r.dropped.size(), 9u);  // lm_head.weight + 2 buffers in each of 4 layers
  // Exactly the tensors transformers' own save_pretrained writes for neo-tiny.
  EXPECT_EQ(names_in(out), names_in(test::neo_tiny_dir()));
  EXPECT_EQ(SafetensorsFile(out / "model.safetensors").metadata().at("format"), "pt");
  EXPECT_EQ(logits_of(out, kIds), logits_of(test::neo_tiny_dir(), kIds));
  EXPECT_EQ(logits_of(out, kIds), logits_of(neo_tiny_bin_dir(), kIds));
}

TEST(Convert, ShardsAboveTheLimitWithAnIndexAndIdenticalLogits) {
  TempDir d;
  const fs::path out = d / "j";
  SaveOptions o;
  o.max_shard_bytes = 1'000'000;
  const SaveResult r = convert_model(gptj_dir(), out, o);
  EXPECT_TRUE(r.dropped.empty());  // GPT-J's head is untied: lm_head.weight stays
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  const auto index = test::read_json(out / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), r.weight_bytes);
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  EXPECT_GT(shards.size(), 1u);
  for (const auto& s : shards) {
    // A shard holds at most the limit, unless one tensor alone exceeds it (wte, lm_head: 3.2 MB).
    const SafetensorsFile f(out / s);
    uint64_t bytes = 0;
    for (const auto& [n, v] : f.tensors()) bytes += v.nbytes;
    EXPECT_TRUE(bytes <= o.max_shard_bytes || f.tensors().size() == 1) << s << ": " << bytes;
  }
  EXPECT_EQ(names_in(out), names_in(gptj_dir()));
  EXPECT_EQ(logits_of(out, kIds), logits_of(gptj_dir(), kIds));
}

TEST(Convert, HalfAndBfloat16RoundEveryWeightAndUpdateTheConfig) {
  for (const auto& [format, dtype, name] : {std::tuple{WeightFormat::F16, DType::F16, "float16"},
                                            std::tuple{WeightFormat::BF16, DType::BF16, "bfloat16"}}) {
    SCOPED_TRACE(name);
    TempDir d;
    SaveOptions o;
    o.dtype = format;
    convert_model(neo_tiny_bin_dir(), d / "m", o);
    EXPECT_EQ(test::read_json(d / "m" / "config.json")["dtype"], name);  // transformers 5 spells it "dtype"
    const Checkpoint src = Checkpoint::open(test::neo_tiny_dir());
    const Checkpoint got = Checkpoint::open(d / "m");
    for (const auto& [tensor, v] : src.tensors()) {
      const TensorView& g = got.get(tensor);
      ASSERT_EQ(g.dtype, dtype);
      ASSERT_EQ(g.shape, v.shape);
      const auto* f = reinterpret_cast<const float*>(v.data);
      const auto* h = reinterpret_cast<const uint16_t*>(g.data);
      for (int64_t i = 0; i < v.numel(); ++i)
        ASSERT_EQ(h[i], dtype == DType::F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i])) << tensor << "[" << i << "]";
    }
    // Rounded weights move the logits a little, not a lot.
    const auto a = logits_of(d / "m", kIds), b = logits_of(test::neo_tiny_dir(), kIds);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
    EXPECT_LT(worst, 0.05);
    EXPECT_GT(worst, 0.0);
  }
}

TEST(Convert, CopiesTokenizerFilesAndRefusesToOverwrite) {
  TempDir d;
  test::copy_folder(neo_tiny_bin_dir(), d / "src");
  fs::copy_file(test::tokenizer_dir() / "vocab.json", d / "src" / "vocab.json");
  fs::copy_file(test::tokenizer_dir() / "merges.txt", d / "src" / "merges.txt");
  test::write_file(d / "src" / "notes.txt", "not a model file");
  convert_model(d / "src", d / "out");
  EXPECT_EQ(test::read_file(d / "out" / "vocab.json"), test::read_file(d / "src" / "vocab.json"));
  EXPECT_TRUE(fs::exists(d / "out" / "merges.txt"));
  EXPECT_FALSE(fs::exists(d / "out" / "notes.txt"));
  try {
    convert_model(d / "src", d / "out");
    ADD_FAILURE() << "overwrote a model folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  // Converting a folder gptneo cannot read fails and leaves nothing behind.
  fs::create_directories(d / "bad");
  fs::copy_file(neo_tiny_bin_dir() / "config.json", d / "bad" / "config.json");
  EXPECT_THROW(convert_model(d / "bad", d / "bad-out"), Error);
  EXPECT_FALSE(fs::exists(d / "bad-out"));
}

TEST(Convert, SaveModelCanSaveOverAnEarlierSaveInAnotherLayout) {
  std::vector<float> w(1000, 0.5f), b(10, -1.0f);
  const std::map<std::string, FloatTensor> tensors = {{"a.weight", {{100, 10}, w.data()}}, {"a.bias", {{10}, b.data()}}};
  const std::string config = R"({"model_type": "gpt_neo", "torch_dtype": "float16"})";
  TempDir d;
  SaveOptions sharded;
  sharded.max_shard_bytes = 2000;
  EXPECT_EQ(save_model(d.path(), config, tensors, sharded).files.size(), 4u);  // 2 shards, index, config
  EXPECT_TRUE(fs::exists(d / "model-00002-of-00002.safetensors"));
  const SaveResult r = save_model(d.path(), config, tensors);
  EXPECT_EQ(r.files, (std::vector<std::string>{"model.safetensors", "config.json"}));
  EXPECT_FALSE(fs::exists(d / "model-00001-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(d / "model.safetensors.index.json"));
  EXPECT_EQ(test::read_json(d / "config.json")["torch_dtype"], "float32");  // what was written
  const SafetensorsFile f(d / "model.safetensors");
  EXPECT_EQ(f.tensors().at("a.weight").shape, (std::vector<int64_t>{100, 10}));
  EXPECT_EQ(reinterpret_cast<const float*>(f.tensors().at("a.bias").data)[3], -1.0f);
}

TEST(Convert, CliConvertsAndReportsErrors) {
  TempDir d;
  const auto ok = test::run_cli({"-q", "convert", "-m", neo_tiny_bin_dir().string(), "-o", (d / "o").string(),
                                 "--dtype", "bf16", "--max-shard-size", "2MB"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("56 tensors"), std::string::npos) << ok.out;
  EXPECT_NE(ok.err.find("lm_head.weight"), std::string::npos) << ok.err;
  EXPECT_TRUE(fs::exists(d / "o" / "model.safetensors.index.json"));
  const auto score = test::run_cli({"-q", "score", "-m", (d / "o").string(), "--ids", "464,3290,318"});
  EXPECT_EQ(score.exit_code, 0) << score.err;

  const auto again = test::run_cli({"convert", "-m", neo_tiny_bin_dir().string(), "-o", (d / "o").string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
  const auto bad_dtype = test::run_cli({"convert", "-m", neo_tiny_bin_dir().string(), "-o", (d / "p").string(),
                                        "--dtype", "int4"});
  EXPECT_EQ(bad_dtype.exit_code, 1);
  EXPECT_NE(bad_dtype.err.find("int4"), std::string::npos) << bad_dtype.err;
  const auto bad_size = test::run_cli({"convert", "-m", neo_tiny_bin_dir().string(), "-o", (d / "p").string(),
                                       "--max-shard-size", "lots"});
  EXPECT_EQ(bad_size.exit_code, 1);
  EXPECT_NE(bad_size.err.find("lots"), std::string::npos) << bad_size.err;
  const auto missing = test::run_cli({"convert", "-m", (d / "nothing").string(), "-o", (d / "p").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace gptneo
