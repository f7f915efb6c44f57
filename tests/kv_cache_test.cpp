// Incremental decoding with the KV cache must give the logits of a full
// forward pass: token by token, in chunks, past the local window, in batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "gptneo/error.h"
#include "gptneo/model.h"
#include "models/kv_cache.h"
#include "test_support.h"

namespace gptneo {
namespace {

class KVCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::neo_tiny_dir()).release(); }
  static void TearDownTestSuite() { delete model_; }

  static std::vector<TokenId> random_ids(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<TokenId> ids(n);
    for (auto& t : ids) t = static_cast<TokenId>(rng() % 50257);
    return ids;
  }
  // Logits of every position from one uncached pass.
  static Logits full_pass(const std::vector<TokenId>& ids) {
    KVCache cache = model_->new_cache(static_cast<int64_t>(ids.size()));
    const SequenceChunk c{&cache, ids, true};
    return model_->forward({&c, 1});
  }
  static double max_diff(const float* a, const float* b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
    return worst;
  }
  static Model* model_;
};
Model* KVCacheTest::model_ = nullptr;

// neo-tiny has window 16 and 128 positions: 128 tokens run far past the
// window of its local layers, so the ring buffer wraps several times.
TEST_F(KVCacheTest, TokenByTokenEqualsFullPassPastTheLocalWindow) {
  const auto ids = random_ids(128, 1);
  const Logits full = full_pass(ids);
  KVCache cache = model_->new_cache(128);
  const int64_t V = model_->config().vocab_size;
  for (size_t t = 0; t < ids.size(); ++t) {
    const SequenceChunk c{&cache, {&ids[t], 1}};
    const Logits step = model_->forward({&c, 1});
    ASSERT_LE(max_diff(step.row(0), full.row(t), V), 1e-4) << "position " << t;
  }
  EXPECT_EQ(cache.length(), 128);
}

// Chunks store their keys and values while attending unless that could
// displace a position one of their queries reads (can_store_while_attending):
// the local layers' ring of 128 positions has 64 slots of slack beyond the
// window of 16, so 70 rows from position 40 store after all the queries
// have read the cache; rows of the first 80 positions, and all of a cache of
// 60 positions (whose local layers keep 60 slots and never wrap), displace
// none. Each list of chunk sizes repeats its last.
TEST_F(KVCacheTest, ChunksOfAnySizeEqualFullPass) {
  const int64_t V = model_->config().vocab_size;
  const std::vector<std::vector<size_t>> chunkings = {{3}, {16}, {17}, {40}, {60}, {65}, {66}, {70}, {40, 70}};
  for (const size_t length : {128u, 60u}) {
    const auto ids = random_ids(length, 2);
    const Logits full = full_pass(ids);
    for (const auto& sizes : chunkings) {
      KVCache cache = model_->new_cache(static_cast<int64_t>(length));
      size_t t = 0;
      for (size_t k = 0; t < ids.size(); ++k) {
        const size_t n = std::min(sizes[std::min(k, sizes.size() - 1)], ids.size() - t);
        const SequenceChunk c{&cache, {&ids[t], n}, true};
        const Logits out = model_->forward({&c, 1});
        for (size_t i = 0; i < n; ++i)
          ASSERT_LE(max_diff(out.row(i), full.row(t + i), V), 1e-4)
              << "length " << length << ", chunk of " << n << " from " << t << ", position " << t + i;
        t += n;
      }
    }
  }
}

TEST_F(KVCacheTest, ABatchOfSequencesEqualsEachAlone) {
  const auto a = random_ids(30, 3), b = random_ids(5, 4), c = random_ids(70, 5);
  const Logits fa = full_pass(a), fb = full_pass(b), fc = full_pass(c);
  KVCache ca = model_->new_cache(40), cb = model_->new_cache(40), cc = model_->new_cache(80);
  // Prefill a and c together, while b waits; then all three decode together.
  std::vector<SequenceChunk> batch = {{&ca, {a.data(), 20}, true}, {&cc, {c.data(), 60}, false}};
  Logits out = model_->forward(batch);
  ASSERT_EQ(out.rows, 21);
  const int64_t V = model_->config().vocab_size;
  for (int i = 0; i < 20; ++i) ASSERT_LE(max_diff(out.row(i), fa.row(i), V), 1e-4);
  ASSERT_LE(max_diff(out.row(20), fc.row(59), V), 1e-4);
  batch = {{&ca, {a.data() + 20, 10}, false}, {&cb, {b.data(), 5}, true}, {&cc, {c.data() + 60, 10}, false}};
  out = model_->forward(batch);
  ASSERT_EQ(out.rows, 7);
  EXPECT_LE(max_diff(out.row(0), fa.row(29), V), 1e-4);
  for (int i = 0; i < 5; ++i) EXPECT_LE(max_diff(out.row(1 + i), fb.row(i), V), 1e-4);
  EXPECT_LE(max_diff(out.row(6), fc.row(69), V), 1e-4);
}

TEST_F(KVCacheTest, TruncateStepsBackWithinTheRingSlack) {
  const auto ids = random_ids(90, 6);
  const Logits full = full_pass(ids);
  const int64_t V = model_->config().vocab_size;
  KVCache cache = model_->new_cache(128);
  SequenceChunk c{&cache, {ids.data(), 90}};
  model_->forward({&c, 1});
  // Drop the last 10 positions and recompute them: same logits.
  cache.truncate(80);
  c.tokens = {ids.data() + 80, 10};
  c.all_logits = true;
  const Logits again = model_->forward({&c, 1});
  for (int i = 0; i < 10; ++i) EXPECT_LE(max_diff(again.row(i), full.row(80 + i), V), 1e-4);
  // Stepping back further than the local layers' ring holds is refused.
  EXPECT_THROW(cache.truncate(5), Error);
  EXPECT_EQ(cache.length(), 90);
}

TEST_F(KVCacheTest, CopyIsIndependent) {
  const auto ids = random_ids(20, 7);
  const Logits full = full_pass(ids);
  KVCache a = model_->new_cache(20);
  SequenceChunk c{&a, {ids.data(), 19}};
  model_->forward({&c, 1});
  KVCache b = a.copy();
  const std::vector<TokenId> other = {42};
  c.tokens = other;
  model_->forward({&c, 1});  // a goes another way
  SequenceChunk cb{&b, {ids.data() + 19, 1}};
  const Logits out = model_->forward({&cb, 1});
  EXPECT_LE(max_diff(out.row(0), full.row(19), model_->config().vocab_size), 1e-4);
}

TEST_F(KVCacheTest, LocalLayersKeepOnlyARing) {
  // 2 global layers hold 128 positions; 2 local ones hold window + slack.
  const KVCache cache = model_->new_cache(128);
  const size_t width = 32 * sizeof(float) * 2;  // k and v
  const size_t ring = std::min<size_t>(128, 16 + 64);
  EXPECT_EQ(cache.bytes(), width * (2 * 128 + 2 * ring));
}

// Unless LoadOptions names a format, caches are float32 with float32 weights
// (the reference's results) and f16 with 16-bit or quantized ones.
TEST(KVCacheFormatDefault, FollowsTheWeightsUnlessNamed) {
  const ModelConfig config = ModelConfig::load(test::neo_tiny_dir());
  for (const WeightFormat w : {WeightFormat::F32, WeightFormat::F16, WeightFormat::BF16, WeightFormat::Q8,
                               WeightFormat::Q4}) {
    SCOPED_TRACE(weight_format_name(w));
    LoadOptions options;
    options.weights = w;
    const auto by_weights = Model::random(config, options);
    EXPECT_EQ(by_weights->kv_cache_format(), w == WeightFormat::F32 ? KVCacheFormat::F32 : KVCacheFormat::F16);
    EXPECT_EQ(by_weights->kv_cache_format(), default_kv_cache_format(w));
    for (const KVCacheFormat named : {KVCacheFormat::F32, KVCacheFormat::F16}) {
      options.kv_cache = named;
      EXPECT_EQ(Model::random(config, options)->kv_cache_format(), named);
    }
  }
}

// A key or value beyond half's range is kept at ±65504, not as an infinity
// (which would make NaN of every score and output it enters).
TEST(KVCacheF16, KeepsValuesBeyondHalfsRangeFinite) {
  LoadOptions options;
  options.kv_cache = KVCacheFormat::F16;
  const auto model = Model::load(test::neo_tiny_dir(), options);
  const int64_t head_dim = model->config().hidden_size / model->config().num_heads;
  KVCache cache = model->new_cache(4);
  std::vector<float> key(static_cast<size_t>(head_dim), 1e6f), value(static_cast<size_t>(head_dim), -7e4f);
  key[1] = 3.0f;
  value[1] = -0.5f;
  cache.impl().store(1, 1, 2, key.data(), value.data());
  std::vector<float> k(key.size()), v(value.size());
  cache.impl().load(1, 1, 2, k.data(), v.data());
  EXPECT_EQ(k[0], 65504.0f);
  EXPECT_EQ(v[0], -65504.0f);
  EXPECT_EQ(k[1], 3.0f);
  EXPECT_EQ(v[1], -0.5f);
}

// An f16 cache: half the bytes, and the trained model's logits stay within
// the rounding of keys and values to 11 significant bits of a float32
// cache's, token by token past the local window, in a prompt-sized chunk,
// and with a cache copied (the server's prompt cache) mid-way.
TEST(KVCacheF16, HalfTheMemoryAndLogitsCloseToFloat32) {
  LoadOptions f16;
  f16.kv_cache = KVCacheFormat::F16;
  const auto exact = Model::load(test::neo_trained_dir());
  const auto half = Model::load(test::neo_trained_dir(), f16);
  EXPECT_EQ(half->kv_cache_format(), KVCacheFormat::F16);
  EXPECT_EQ(half->new_cache(300).bytes() * 2, exact->new_cache(300).bytes());

  const int64_t n = 300, V = exact->config().vocab_size;
  std::mt19937 rng(11);
  std::vector<TokenId> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<TokenId>(rng() % 2000);
  KVCache ce = exact->new_cache(n), ch = half->new_cache(n);
  // The first 200 as one chunk (prompt attention), then one at a time.
  SequenceChunk a{&ce, {ids.data(), 200}}, b{&ch, {ids.data(), 200}};
  exact->forward({&a, 1});
  half->forward({&b, 1});
  KVCache copied = ch.copy();
  double worst = 0;
  int same_top = 0;
  for (int64_t t = 200; t < n; ++t) {
    const SequenceChunk se{&ce, {&ids[static_cast<size_t>(t)], 1}};
    const SequenceChunk sh{t < 250 ? &ch : &copied, {&ids[static_cast<size_t>(t)], 1}};
    if (t == 250) copied = ch.copy();
    const Logits le = exact->forward({&se, 1}), lh = half->forward({&sh, 1});
    for (int64_t i = 0; i < V; ++i) worst = std::max(worst, double(std::abs(le.row(0)[i] - lh.row(0)[i])));
    same_top += std::max_element(le.row(0), le.row(0) + V) - le.row(0) ==
                std::max_element(lh.row(0), lh.row(0) + V) - lh.row(0);
  }
  EXPECT_GT(worst, 0.0) << "an f16 cache rounds: the logits cannot be identical";
  EXPECT_LT(worst, 0.05);
  EXPECT_GE(same_top, 98);
  std::printf("f16 KV cache: largest logit difference %.2e, same top token %d / 100\n", worst, same_top);
}

}  // namespace
}  // namespace gptneo
