// Bad model folders and bad inputs: each must give a gptneo::Error whose
// message names the problem, never a crash (the sanitizer build checks that).
#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "gptneo/error.h"
#include "gptneo/model.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace gptneo {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// Runs `fn`, expecting a gptneo::Error whose message contains every fragment.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    FAIL() << "no error; expected one mentioning " << fragments[0];
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// A copy of neo-tiny whose config.json is edited by `edit`.
void copy_with_config(const fs::path& to, const std::function<void(nlohmann::json&)>& edit) {
  test::copy_folder(test::neo_tiny_dir(), to);
  auto cfg = test::read_json(to / "config.json");
  edit(cfg);
  test::write_file(to / "config.json", cfg.dump(2));
}

// A copy of neo-tiny whose weights are rewritten through `edit`, which gets
// the tensors (names, dtypes, shapes, data) and may change the list.
void copy_with_weights(const fs::path& to, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  test::copy_folder(test::neo_tiny_dir(), to);
  const SafetensorsFile src(test::neo_tiny_dir() / "model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, v] : src.tensors()) tensors.push_back({name, v.dtype, v.shape, v.data});
  edit(tensors);
  write_safetensors(to / "model.safetensors", tensors);
}

TEST(ModelErrors, MissingFolder) {
  expect_error([] { Model::load("/nonexistent/model"); }, {"/nonexistent/model", "does not exist"});
}

TEST(ModelErrors, MissingConfig) {
  TempDir d;
  test::copy_folder(test::neo_tiny_dir(), d.path());
  fs::remove(d / "config.json");
  expect_error([&] { Model::load(d.path()); }, {"config.json", "missing"});
}

TEST(ModelErrors, ConfigThatIsNotJson) {
  TempDir d;
  test::copy_folder(test::neo_tiny_dir(), d.path());
  test::write_file(d / "config.json", "{\"model_type\": \"gpt_neo\",");
  expect_error([&] { Model::load(d.path()); }, {"config.json", "not valid JSON"});
}

TEST(ModelErrors, ConfigMissingAField) {
  for (const char* field : {"hidden_size", "num_layers", "num_heads", "vocab_size", "max_position_embeddings",
                            "window_size", "model_type"}) {
    TempDir d;
    copy_with_config(d.path(), [&](nlohmann::json& c) { c.erase(field); });
    expect_error([&] { Model::load(d.path()); }, {"config.json", "missing field", field});
  }
}

TEST(ModelErrors, ConfigFieldOfTheWrongType) {
  TempDir d;
  copy_with_config(d.path(), [](nlohmann::json& c) { c["num_heads"] = "four"; });
  expect_error([&] { Model::load(d.path()); }, {"num_heads", "must be an integer"});
}

TEST(ModelErrors, ConfigWithInconsistentSizes) {
  TempDir d;
  copy_with_config(d.path(), [](nlohmann::json& c) { c["num_heads"] = 5; });
  expect_error([&] { Model::load(d.path()); }, {"not a multiple"});
  TempDir d2;
  copy_with_config(d2.path(), [](nlohmann::json& c) { c["num_layers"] = 6; });
  expect_error([&] { Model::load(d2.path()); }, {"6 layers"});
  TempDir d3;
  copy_with_config(d3.path(), [](nlohmann::json& c) { c["attention_types"] = {{{"global", "sparse"}, 2}}; });
  expect_error([&] { Model::load(d3.path()); }, {"unknown attention type", "sparse"});
  TempDir d4;
  copy_with_config(d4.path(), [](nlohmann::json& c) { c["activation_function"] = "mish"; });
  expect_error([&] { Model::load(d4.path()); }, {"activation_function", "mish"});
}

TEST(ModelErrors, UnknownModelType) {
  TempDir d;
  copy_with_config(d.path(), [](nlohmann::json& c) { c["model_type"] = "llama"; });
  expect_error([&] { Model::load(d.path()); }, {"unsupported model_type", "llama", "gpt_neo"});
}

TEST(ModelErrors, MissingTensor) {
  TempDir d;
  copy_with_weights(d.path(), [](std::vector<TensorToWrite>& t) {
    std::erase_if(t, [](const TensorToWrite& x) { return x.name == "transformer.h.2.mlp.c_fc.bias"; });
  });
  expect_error([&] { Model::load(d.path()); }, {"transformer.h.2.mlp.c_fc.bias", "missing"});
}

TEST(ModelErrors, TensorOfTheWrongShape) {
  TempDir d;
  copy_with_weights(d.path(), [](std::vector<TensorToWrite>& t) {
    for (auto& x : t)
      if (x.name == "transformer.h.1.attn.attention.q_proj.weight") x.shape = {16, 64};
  });
  expect_error([&] { Model::load(d.path()); }, {"transformer.h.1.attn.attention.q_proj.weight", "[16, 64]", "[32, 32]"});
}

TEST(ModelErrors, VocabularyLargerThanTheEmbedding) {
  // A fine-tuned checkpoint changes vocab_size; sizes come from config.json,
  // and a mismatch with the tensors is reported, not read out of bounds.
  TempDir d;
  copy_with_config(d.path(), [](nlohmann::json& c) { c["vocab_size"] = 50300; });
  expect_error([&] { Model::load(d.path()); }, {"transformer.wte.weight", "[50257, 32]", "[50300, 32]"});
}

TEST(ModelErrors, WeightOfANonFloatDtype) {
  TempDir d;
  std::vector<int32_t> ints(32, 1);
  copy_with_weights(d.path(), [&](std::vector<TensorToWrite>& t) {
    for (auto& x : t)
      if (x.name == "transformer.ln_f.bias") {
        x.dtype = DType::I32;
        x.data = ints.data();
      }
  });
  expect_error([&] { Model::load(d.path()); }, {"transformer.ln_f.bias", "I32"});
}

TEST(ModelErrors, TruncatedWeights) {
  TempDir d;
  test::copy_folder(test::neo_tiny_dir(), d.path());
  const std::string full = test::read_file(d / "model.safetensors");
  test::write_file(d / "model.safetensors", full.substr(0, full.size() - 1000));
  expect_error([&] { Model::load(d.path()); }, {"model.safetensors", "truncated"});
}

TEST(ModelErrors, NoWeightsAtAll) {
  TempDir d;
  test::write_file(d / "config.json", test::read_file(test::neo_tiny_dir() / "config.json"));
  expect_error([&] { Model::load(d.path()); }, {"no weights"});
}

TEST(ModelErrors, MissingShard) {
  TempDir d;
  test::copy_folder(test::neo_trained_dir(), d.path());
  fs::remove(d / "model-00002-of-00002.safetensors");
  expect_error([&] { Model::load(d.path()); }, {"model-00002-of-00002.safetensors", "missing"});
}

TEST(ModelErrors, ShardIndexWithoutWeightMap) {
  TempDir d;
  test::copy_folder(test::neo_trained_dir(), d.path());
  test::write_file(d / "model.safetensors.index.json", R"({"metadata": {}})");
  expect_error([&] { Model::load(d.path()); }, {"weight_map"});
  test::write_file(d / "model.safetensors.index.json", R"({"weight_map": {"a": "../../etc/passwd"}})");
  expect_error([&] { Model::load(d.path()); }, {"invalid shard file name"});
}

class ForwardErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::neo_tiny_dir()).release(); }
  static void TearDownTestSuite() { delete model_; }
  static Model* model_;
};
Model* ForwardErrors::model_ = nullptr;

TEST_F(ForwardErrors, TokenOutsideTheVocabulary) {
  KVCache cache = model_->new_cache(8);
  const std::vector<TokenId> ids = {1, 50257};
  const SequenceChunk c{&cache, ids};
  expect_error([&] { model_->forward({&c, 1}); }, {"50257", "outside the model's vocabulary"});
  const std::vector<TokenId> neg = {-1};
  const SequenceChunk c2{&cache, neg};
  expect_error([&] { model_->forward({&c2, 1}); }, {"-1"});
}

TEST_F(ForwardErrors, PositionsPastTheMaximum) {
  expect_error([&] { model_->new_cache(129); }, {"129", "128"});
  KVCache cache = model_->new_cache();
  std::vector<TokenId> ids(128, 7);
  SequenceChunk c{&cache, ids};
  model_->forward({&c, 1});
  const std::vector<TokenId> one = {7};
  c.tokens = one;
  expect_error([&] { model_->forward({&c, 1}); }, {"129", "max_position_embeddings"});
  EXPECT_EQ(cache.length(), 128) << "a refused step leaves the cache as it was";
}

TEST_F(ForwardErrors, CacheCapacityAndEmptyInput) {
  KVCache cache = model_->new_cache(4);
  const std::vector<TokenId> ids = {1, 2, 3, 4, 5};
  const SequenceChunk c{&cache, ids};
  expect_error([&] { model_->forward({&c, 1}); }, {"capacity of 4"});
  const SequenceChunk empty{&cache, {}};
  expect_error([&] { model_->forward({&empty, 1}); }, {"no new tokens"});
  const SequenceChunk none{nullptr, ids};
  expect_error([&] { model_->forward({&none, 1}); }, {"no KV cache"});
}

}  // namespace
}  // namespace gptneo
