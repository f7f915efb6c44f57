// Quantized weights: `quantize_model` folders load mapped and without a
// copy, and the smaller formats keep the perplexity of the bundled trained
// model within the limits of the issue (+0.2 % bf16, +0.5 % q8, +5 % q4).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "core/thread_pool.h"
#include "gptneo/error.h"
#include "gptneo/model.h"
#include "gptneo/scoring.h"
#include "gptneo/tokenizer.h"
#include "io/quantized_weights.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"
#include "models/layers.h"
#include "test_support.h"

namespace gptneo {
namespace {

// Quantized copies of the bundled model, made once for the whole suite.
const std::filesystem::path& quantized_dir(WeightFormat f) {
  static test::TempDir tmp;
  static std::map<WeightFormat, std::filesystem::path> dirs;
  auto& d = dirs[f];
  if (d.empty()) {
    d = tmp / weight_format_name(f);
    ThreadPool pool(2);
    quantize_model(test::neo_trained_dir(), d, f, pool);
  }
  return d;
}

double perplexity_of(Model& model, int64_t windows) {
  const Tokenizer tok = Tokenizer::load(test::neo_trained_dir());
  const auto tokens = tok.encode(test::read_file(test::data_dir() / "corpus-val.txt"));
  PerplexityOptions options;
  options.context = 1024;
  options.max_windows = windows;
  return perplexity(model, tokens, options).perplexity;
}

TEST(QuantizeFolder, WritesMetadataAndLoadsWithoutCopyingTheStackedProjections) {
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    const auto& dir = quantized_dir(f);
    EXPECT_EQ(stored_weight_format(dir), f);
    EXPECT_EQ(stored_weight_format(test::neo_trained_dir()), std::nullopt);
    EXPECT_TRUE(std::filesystem::exists(dir / "config.json"));
    EXPECT_TRUE(std::filesystem::exists(dir / "tokenizer.json"));
    const Checkpoint ck = Checkpoint::open(dir);
    const std::string a = "transformer.h.1.attn.attention.";
    ASSERT_TRUE(is_quantized_tensor(ck, a + "q_proj.weight"));
    EXPECT_FALSE(is_quantized_tensor(ck, "transformer.wpe.weight"));  // positions stay float
    const WeightLoader loader(ck, f);
    const Matrix qkv = loader.stacked({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, 256, 256);
    EXPECT_EQ(qkv.format, f);
    EXPECT_EQ(qkv.rows, 3 * 256);
    EXPECT_EQ(qkv.data, static_cast<const void*>(ck.get(a + "q_proj.weight").data)) << "the mapped bytes are used";
    // Loaded in another format, the same tensors are converted.
    const Matrix f32 = WeightLoader(ck, WeightFormat::F32).matrix(a + "out_proj.weight", 256, 256);
    EXPECT_EQ(f32.format, WeightFormat::F32);
    EXPECT_NE(f32.data, static_cast<const void*>(ck.get(a + "out_proj.weight").data));
  }
}

TEST(QuantizeFolder, RefusesBadRequests) {
  ThreadPool pool(1);
  test::TempDir tmp;
  EXPECT_THROW(quantize_model(test::neo_trained_dir(), tmp / "x", WeightFormat::BF16, pool), Error);
  std::filesystem::create_directories(tmp / "full");
  test::write_file(tmp / "full" / "file", "x");
  EXPECT_THROW(quantize_model(test::neo_trained_dir(), tmp / "full", WeightFormat::Q8, pool), Error);
  EXPECT_THROW(quantize_model(quantized_dir(WeightFormat::Q8), tmp / "again", WeightFormat::Q4, pool), Error);
  const auto r = test::run_cli({"quantize", "-m", test::neo_trained_dir().string(), "-o", (tmp / "y").string(),
                                "--dtype", "q5"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("expected q8 or q4"), std::string::npos) << r.err;
}

TEST(QuantizePerplexity, SmallerFormatsStayWithinTheirLimits) {
  constexpr int64_t kWindows = 1;  // of 1024 tokens; docs/performance.md gives all 8
  const double f32 = perplexity_of(*Model::load(test::neo_trained_dir()), kWindows);
  struct Case {
    WeightFormat format;
    bool from_folder;
    double limit;
  };
  for (const Case c : {Case{WeightFormat::BF16, false, 0.002}, Case{WeightFormat::Q8, true, 0.005},
                       Case{WeightFormat::Q4, true, 0.05}}) {
    LoadOptions o;
    o.weights = c.format;
    const auto model = Model::load(c.from_folder ? quantized_dir(c.format) : test::neo_trained_dir(), o);
    const double p = perplexity_of(*model, kWindows);
    SCOPED_TRACE(weight_format_name(c.format) + (c.from_folder ? " (quantized folder)" : " (converted at load)"));
    EXPECT_LT(p / f32 - 1, c.limit) << "perplexity " << p << " vs f32 " << f32;
    EXPECT_NE(p, f32) << "the weights were not in the smaller format";
  }
}

// Perplexity of the first n tokens of the validation text, either with one
// token per forward pass as generation runs (for q8 / q4 the integer path:
// activations quantized to int8 per block) or in one pass (float32 panels,
// or int8 too where kernels::int8_products says so).
double first_tokens_perplexity(Model& model, int64_t n, bool one_at_a_time) {
  const Tokenizer tok = Tokenizer::load(test::neo_trained_dir());
  auto tokens = tok.encode(test::read_file(test::data_dir() / "corpus-val.txt"));
  tokens.resize(static_cast<size_t>(n));
  KVCache cache = model.new_cache(n);
  Logits logits;
  if (one_at_a_time) {
    logits.vocab = model.config().vocab_size;
    for (int64_t i = 0; i + 1 < n; ++i) {
      const SequenceChunk chunk{&cache, std::span<const TokenId>(&tokens[i], 1)};
      const Logits one = model.forward(std::span<const SequenceChunk>(&chunk, 1));
      logits.data.insert(logits.data.end(), one.data.begin(), one.data.end());
    }
  } else {
    const SequenceChunk chunk{&cache, std::span<const TokenId>(tokens.data(), tokens.size() - 1), true};
    logits = model.forward(std::span<const SequenceChunk>(&chunk, 1));
  }
  double nll = 0;
  for (int64_t i = 0; i + 1 < n; ++i) {
    const float* row = logits.data.data() + i * logits.vocab;
    double mx = row[0], sum = 0;
    for (int64_t v = 1; v < logits.vocab; ++v) mx = std::max<double>(mx, row[v]);
    for (int64_t v = 0; v < logits.vocab; ++v) sum += std::exp(row[v] - mx);
    nll += mx + std::log(sum) - row[tokens[i + 1]];
  }
  return std::exp(nll / static_cast<double>(n - 1));
}

// The same in one pass with the quantized weights widened to float32 and
// multiplied exactly: on the kernel set in use where its prompts take the
// float panels, else on avx2 (or scalar), the one in use restored afterwards.
double exact_weights_perplexity(Model& model, int64_t n) {
  if (!kernels::int8_products(n - 1)) return first_tokens_perplexity(model, n, false);
  const kernels::Isa previous = kernels::active().isa;
  kernels::set_active(kernels::cpu_supports(kernels::Isa::Avx2) ? kernels::Isa::Avx2 : kernels::Isa::Scalar);
  EXPECT_FALSE(kernels::int8_products(n - 1));
  const double ppl = first_tokens_perplexity(model, n, false);
  kernels::set_active(previous);
  return ppl;
}

// The int8 activations of the integer path (decode; prompts too with
// AVX512-VNNI) cost little on top of the weights' own rounding: one token
// at a time against the same weights multiplied exactly, and against
// float32; where prompts take the integer path as well, a prompt's
// perplexity is the decode path's but for the order of attention's sums.
TEST(QuantizePerplexity, IntegerPathAddsLittleToTheWeightsError) {
  constexpr int64_t kTokens = 200;
  const double f32 = first_tokens_perplexity(*Model::load(test::neo_trained_dir()), kTokens, true);
  for (const WeightFormat format : {WeightFormat::Q8, WeightFormat::Q4}) {
    const auto model = Model::load(quantized_dir(format));
    const double decode = first_tokens_perplexity(*model, kTokens, true);
    const double pass = first_tokens_perplexity(*model, kTokens, false);
    const double exact = exact_weights_perplexity(*model, kTokens);
    SCOPED_TRACE(weight_format_name(format));
    std::printf("[ int8 path ] %s: %.4f one token at a time, %.4f in one pass, %.4f exact weights, f32 %.4f\n",
                weight_format_name(format).c_str(), decode, pass, exact, f32);
    EXPECT_NE(decode, exact) << "the one-token passes did not take the integer path";
    EXPECT_LT(std::abs(decode / exact - 1), 0.005) << "int8 activations: " << decode << " vs " << exact;
    if (kernels::int8_products(kTokens - 1))
      EXPECT_LT(std::abs(pass / decode - 1), 1e-4) << "int8 prompt " << pass << " vs int8 decode " << decode;
    else
      EXPECT_EQ(pass, exact);
    // (q4's own rounding on these 200 tokens is measured by the test above
    // on a whole window.)
    if (format == WeightFormat::Q8) {
      EXPECT_LT(std::abs(decode / f32 - 1), 0.005) << decode << " vs f32 " << f32;
    }
  }
}

}  // namespace
}  // namespace gptneo
