// Every kernel set against the scalar references of kernels/reference.h, on
// odd sizes (tails of every loop) and in every weight format.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "gptneo/error.h"
#include "kernels/kernel_set.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/reference.h"

namespace gptneo {
namespace {

using kernels::Isa;

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

Matrix random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m = make_f32_matrix(rows, cols);
  const auto v = random_values(static_cast<size_t>(rows * cols), seed);
  std::copy(v.begin(), v.end(), const_cast<float*>(m.f32()));
  return m;
}

// Runs the test body with the kernel set of the parameter, restoring the
// default afterwards; skips (with the reason) where the CPU lacks it.
class KernelsIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!kernels::cpu_supports(GetParam()))
      GTEST_SKIP() << "this CPU has no " << kernels::isa_label(GetParam())
                   << ": those kernels are compiled but cannot be run here";
    previous_ = kernels::active().isa;
    kernels::set_active(GetParam());
  }
  void TearDown() override {
    if (kernels::cpu_supports(GetParam())) kernels::set_active(previous_);
  }
  Isa previous_ = Isa::Scalar;
};

TEST_P(KernelsIsa, LinearMatchesTheReferenceInEveryFormatOnOddSizes) {
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (const WeightFormat f : {WeightFormat::F32, WeightFormat::F16, WeightFormat::BF16, WeightFormat::Q8, WeightFormat::Q4})
    // (AVX512-VNNI int8: 256 is one octet of blocks exactly, 300 an octet and
    // two blocks, 544 two octets and one.)
    for (const int64_t k : {7, 32, 37, 100, 256, 300, 544})
      for (const int64_t n : {1, 5, 17, 40})
        for (const int64_t m : {1, 2, 3, 5, 8, 13, 20, 31, 32, 45}) {
          SCOPED_TRACE(testing::Message() << weight_format_name(f) << " m=" << m << " k=" << k << " n=" << n);
          const Matrix w = convert_matrix(random_matrix(n, k, ++seed), f);
          const auto x = random_values(static_cast<size_t>(m * k), ++seed);
          const auto bias = random_values(static_cast<size_t>(n), ++seed);
          std::vector<float> got(static_cast<size_t>(m * n)), want(got.size());
          kernels::linear(x.data(), m, w, bias.data(), got.data(), pool);
          if (is_quantized(f) && kernels::int8_products(m)) {
            reference::linear_int8(x.data(), m, w, bias.data(), want.data());
          } else if (f == WeightFormat::BF16 && m >= kernels::kPackedMinRows && kernels::bf16_dot_products()) {
            // bf16 dot products: the product of bf16 weights and x rounded to bf16.
            auto xr = x;
            for (float& v : xr) v = bf16_to_f32(f32_to_bf16(v));
            reference::linear(xr.data(), m, w, bias.data(), want.data());
          } else {
            reference::linear(x.data(), m, w, bias.data(), want.data());
          }
          // Float32 sums in another order: error grows with sqrt(k) at most.
          const double tol = 2e-6 * k;
          for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "element " << i;
        }
}

// Prompt products past one depth block (AVX-512: 1024 units, 2048 bf16 or
// 1024 float32 columns) and one pass of x (64 rows), with an odd last column
// (half a bf16 unit); for q8 / q4 taken in int8, more rows than one chunk of
// quantized x (42 rows of 129 blocks) and an octet tail of one block.
TEST_P(KernelsIsa, PromptProductsSpanDepthBlocksAndPasses) {
  ThreadPool pool(2);
  const int64_t k = 4101, n = 13, m = 70;
  for (const WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Q8, WeightFormat::Q4}) {
    SCOPED_TRACE(weight_format_name(f));
    const Matrix w = convert_matrix(random_matrix(n, k, 91), f);
    auto x = random_values(static_cast<size_t>(m * k), 92);
    std::vector<float> got(static_cast<size_t>(m * n)), want(got.size());
    kernels::linear(x.data(), m, w, nullptr, got.data(), pool);
    if (f == WeightFormat::BF16 && kernels::bf16_dot_products())
      for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));
    if (is_quantized(f) && kernels::int8_products(m))
      reference::linear_int8(x.data(), m, w, nullptr, want.data());
    else
      reference::linear(x.data(), m, w, nullptr, want.data());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 * k) << "element " << i;
  }
}

TEST_P(KernelsIsa, VectorPrimitivesMatchTheReference) {
  for (const int64_t n : {1, 3, 8, 17, 64, 100, 1000}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    const auto a = random_values(static_cast<size_t>(n), 7 + n, 3.0f), b = random_values(static_cast<size_t>(n), 9 + n);
    double want_dot = 0;
    for (int64_t i = 0; i < n; ++i) want_dot += double(a[i]) * b[i];
    EXPECT_NEAR(kernels::dot(a.data(), b.data(), n), want_dot, 1e-5 * n);

    auto y = b;
    kernels::axpy(0.5f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(y[i], b[i] + 0.5f * a[i]);
    y = b;
    kernels::add(a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(y[i], b[i] + a[i]);

    auto s = a, s_ref = a;
    if (n > 1) s[0] = s_ref[0] = -std::numeric_limits<float>::infinity();
    kernels::softmax(s.data(), n);
    reference::softmax(s_ref.data(), n);
    if (n > 1) {
      EXPECT_EQ(s[0], 0.0f) << "exp(-inf) must be exactly 0";
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(s[i], s_ref[i], 1e-6 + 2e-6 * s_ref[i]);

    auto g = random_values(static_cast<size_t>(n), 11 + n, 12.0f), g_ref = g;
    kernels::activate(kernels::Activation::GeluNew, g.data(), n);
    reference::activate(kernels::Activation::GeluNew, g_ref.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(g[i], g_ref[i], 2e-6 * (1 + std::abs(g_ref[i])));

    const auto gamma = random_values(static_cast<size_t>(n), 13), beta = random_values(static_cast<size_t>(n), 14);
    auto rows = random_values(static_cast<size_t>(3 * n), 15 + n, 5.0f);
    for (auto& v : rows) v += 100.0f;  // a large mean: the variance must be centred
    std::vector<float> ln(rows.size()), ln_ref(rows.size());
    kernels::layer_norm(rows.data(), 3, n, gamma.data(), beta.data(), 1e-5f, ln.data());
    reference::layer_norm(rows.data(), 3, n, gamma.data(), beta.data(), 1e-5f, ln_ref.data());
    for (size_t i = 0; i < ln.size(); ++i) ASSERT_NEAR(ln[i], ln_ref[i], 2e-4);
  }
}

// Keys and values into an f16 KV cache: the bits of core/dtype.h's
// f32_to_f16 (nearest even, subnormals included), beyond half's range ±65504
// instead of infinities, NaN still NaN; every length (vector tails).
TEST_P(KernelsIsa, ToF16RoundsAsTheReferenceAndSaturates) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> special = {0.0f,     -0.0f,    1.0f,     -2.5f,   65504.0f, 65519.0f, 65520.0f,
                                      -65520.0f, 1e6f,    -1e30f,   inf,     -inf,     6.1e-5f,  3e-6f,
                                      -3e-8f,   2.9e-8f,  1.0009765625f, 1.00048828125f};
  for (const int64_t n : {1, 7, 16, 17, 31, 64, 100}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    auto x = random_values(static_cast<size_t>(n), 21 + n, 80000.0f);
    for (size_t i = 0; i < x.size() && i < special.size(); ++i) x[i] = special[(i * 7 + n) % special.size()];
    if (n > 10) x[9] = nan;
    std::vector<uint16_t> got(static_cast<size_t>(n), 0xdead);
    kernels::to_f16(x.data(), n, got.data());
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      if (std::isnan(v)) {
        EXPECT_TRUE(std::isnan(f16_to_f32(got[i]))) << i;
        continue;
      }
      const uint16_t want = f32_to_f16(std::min(std::max(v, -65504.0f), 65504.0f));
      ASSERT_EQ(got[i], want) << "x[" << i << "] = " << v;
    }
  }
}

TEST_P(KernelsIsa, AttentionValuesOverStridedRows) {
  for (const int64_t d : {5, 8, 64, 80, 200})
    for (const int64_t n : {1, 3, 4, 7, 33}) {
      SCOPED_TRACE(testing::Message() << "d=" << d << " n=" << n);
      const int64_t stride = d + 3;
      const auto kv = random_values(static_cast<size_t>(n * stride), 22);
      // Weighted values for m queries at once (p rows and out rows padded).
      for (const int64_t m : {1, 2, 5, 9}) {
        SCOPED_TRACE(testing::Message() << "m=" << m);
        const int64_t ldp = n + 2, ldo = d + 1;
        const auto p = random_values(static_cast<size_t>(m * ldp), 23 + m);
        std::vector<float> out(static_cast<size_t>(m * ldo), 1.0f);
        kernels::attention_values(p.data(), ldp, m, kv.data(), stride, n, d, out.data(), ldo);
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t i = 0; i < d; ++i) {
            double want = 1.0;
            for (int64_t j = 0; j < n; ++j) want += double(p[r * ldp + j]) * kv[j * stride + i];
            ASSERT_NEAR(out[r * ldo + i], want, 1e-5 * n);
          }
          EXPECT_EQ(out[r * ldo + d], 1.0f) << "wrote between the output rows";
        }
        // Values kept in IEEE half: the same sums of the rounded values.
        std::vector<uint16_t> kv16(kv.size());
        for (size_t i = 0; i < kv.size(); ++i) kv16[i] = f32_to_f16(kv[i]);
        std::vector<float> out16(static_cast<size_t>(m * ldo), 1.0f);
        kernels::attention_values(p.data(), ldp, m, kv16.data(), stride, n, d, out16.data(), ldo);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t i = 0; i < d; ++i) {
            double want = 1.0;
            for (int64_t j = 0; j < n; ++j) want += double(p[r * ldp + j]) * f16_to_f32(kv16[j * stride + i]);
            ASSERT_NEAR(out16[r * ldo + i], want, 1e-5 * n);
          }
      }
    }
}

// Keys in tiles of kKeyTile positions (the KV cache's layout): runs that
// start and end inside tiles, span one or many tiles (more than the four a
// SIMD set takes at a time), and odd head sizes.
TEST_P(KernelsIsa, AttentionScoresOverKeyTiles) {
  constexpr int64_t T = kernels::kKeyTile;
  for (const int64_t d : {1, 5, 8, 64, 80, 256})
    for (const auto& [first, n] : std::vector<std::pair<int64_t, int64_t>>{
             {0, 1}, {0, 16}, {3, 5}, {15, 2}, {0, 64}, {7, 100}, {16, 130}, {40, 215}}) {
      SCOPED_TRACE(testing::Message() << "d=" << d << " first=" << first << " n=" << n);
      const int64_t tiles = (first + n + T - 1) / T;
      for (const int64_t m : {1, 3, 8, 13}) {
        SCOPED_TRACE(testing::Message() << "m=" << m);
        const int64_t ldq = d + 3, lds = n + 1;
        const auto q = random_values(static_cast<size_t>(m * ldq), 24 + m);
        const auto kt = random_values(static_cast<size_t>(tiles * T * d), 25);
        std::vector<float> scores(static_cast<size_t>(m * lds), -7.0f);
        kernels::attention_scores_tiled(q.data(), ldq, m, kt.data(), first, n, d, 0.25f, scores.data(), lds);
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            const int64_t s = first + j;
            double want = 0;
            for (int64_t i = 0; i < d; ++i) want += double(q[r * ldq + i]) * kt[(s / T) * d * T + i * T + s % T];
            ASSERT_NEAR(scores[r * lds + j], 0.25 * want, 1e-5 * d);
          }
          EXPECT_EQ(scores[r * lds + n], -7.0f) << "wrote past the n scores of a row";
        }
        // Keys kept in IEEE half.
        std::vector<uint16_t> kt16(kt.size());
        for (size_t i = 0; i < kt.size(); ++i) kt16[i] = f32_to_f16(kt[i]);
        kernels::attention_scores_tiled(q.data(), ldq, m, kt16.data(), first, n, d, 0.25f, scores.data(), lds);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) {
            const int64_t s = first + j;
            double want = 0;
            for (int64_t i = 0; i < d; ++i)
              want += double(q[r * ldq + i]) * f16_to_f32(kt16[(s / T) * d * T + i * T + s % T]);
            ASSERT_NEAR(scores[r * lds + j], 0.25 * want, 1e-5 * d);
          }
      }
    }
}

// The activation quantizer of every set gives the reference's integers and
// scales bit for bit, so q8 / q4 results do not depend on the kernel set
// beyond the order of float sums.
TEST_P(KernelsIsa, ActivationQuantizationIsBitForBitTheReference) {
  for (const int64_t k : {1, 31, 32, 33, 100, 2048}) {
    SCOPED_TRACE(testing::Message() << "k=" << k);
    auto x = random_values(static_cast<size_t>(k), 40 + k, 3.0f);
    if (k > 40) {
      for (int i = 32; i < 64; ++i) x[i] = 0.0f;       // an all-zero block: d = 0, no division by zero
      x[5] = 127.5f / 127.0f * std::abs(x[6]) + 1e-3f;  // values on the rounding boundaries
      x[70] = 1e-30f;                                   // a tiny scale
    }
    if (k >= 2048) {  // what a broken model can give: NaN (skipped by the block's maximum, stored as -128), infinity
      x[1000] = std::numeric_limits<float>::quiet_NaN();
      x[1010] = -std::numeric_limits<float>::quiet_NaN();
      x[1100] = std::numeric_limits<float>::infinity();
      x[1200] = std::numeric_limits<float>::quiet_NaN();
      x[1201] = -std::numeric_limits<float>::infinity();
    }
    const int64_t nb = quant::blocks_per_row(k);
    std::vector<quant::BlockAct> got(static_cast<size_t>(nb)), want(got.size());
    kernels::active().quantize_act(x.data(), k, got.data());
    quant::quantize_row_act(x.data(), k, want.data());
    for (int64_t b = 0; b < nb; ++b) {
      ASSERT_EQ(got[b].d, want[b].d) << "block " << b;
      ASSERT_EQ(got[b].s, want[b].s) << "block " << b;
      for (int i = 0; i < 32; ++i) ASSERT_EQ(got[b].q[i], want[b].q[i]) << "block " << b << " element " << i;
    }
  }
}

// In the SIMD sets each output is summed the same way whatever the tile it
// falls in: wherever the int8 products are used (below
// kernels::kQuantPanelMinRows rows, and for prompts too with AVX512-VNNI),
// a row of a batch is bit for bit that row computed alone, with any number
// of threads, so a prompt's token and the same token decoded agree.
TEST_P(KernelsIsa, QuantizedLinearGivesEachRowTheSameBitsAtEveryBatchSize) {
  if (GetParam() == Isa::Scalar) GTEST_SKIP() << "the scalar set makes no such promise";
  const int64_t n = 37;
  const int64_t m = kernels::int8_products(45) ? 45 : 11;
  ASSERT_TRUE(kernels::int8_products(m));
  // 10, 11 and 17 blocks per row (the AVX-512 kernel takes blocks eight at a
  // time, then in pairs).
  for (const int64_t k : {300, 330, 520}) {
    const auto x = random_values(static_cast<size_t>(m * k), 61);
    for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
      SCOPED_TRACE(testing::Message() << weight_format_name(f) << " k=" << k);
      const Matrix w = convert_matrix(random_matrix(n, k, 62), f);
      ThreadPool one(1), two(2);
      std::vector<float> batch(static_cast<size_t>(m * n));
      kernels::linear(x.data(), m, w, nullptr, batch.data(), two);
      for (int64_t i = 0; i < m; ++i) {
        std::vector<float> alone(static_cast<size_t>(n));
        kernels::linear(x.data() + i * k, 1, w, nullptr, alone.data(), one);
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(alone[j], batch[i * n + j]) << "row " << i << " column " << j;
      }
    }
  }
}

// Octets (quant::Layout) hold the same weights: each scale and byte where
// the layout's comment puts it, and back to Blocks unchanged.
TEST(QuantLayout, OctetsHoldEachBlockWhereDocumentedAndConvertBack) {
  // 2 octets and 5 blocks more, the last one partial.
  const int64_t cols = 21 * 32 - 7, nb = quant::blocks_per_row(cols);
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    SCOPED_TRACE(weight_format_name(f));
    const Matrix w = convert_matrix(random_matrix(3, cols, 81), f);
    const Matrix arranged = with_layout(w, quant::Layout::Octets);
    ASSERT_EQ(arranged.layout, quant::Layout::Octets);
    ASSERT_EQ(arranged.bytes(), w.bytes());
    const size_t bb = quant::block_bytes(f), head = f == WeightFormat::Q8 ? 2 : 4, q_bytes = f == WeightFormat::Q8 ? 32 : 16;
    for (int64_t r = 0; r < w.rows; ++r) {
      const uint8_t* in = w.row(r);
      const uint8_t* out = arranged.row(r);
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* block = in + b * bb;
        if (b >= 16) {  // past the octets: as it was
          ASSERT_EQ(0, std::memcmp(block, out + b * bb, bb)) << "block " << b;
          continue;
        }
        const uint8_t* octet = out + (b / 8) * 8 * bb;
        const int64_t beta = b % 8;
        ASSERT_EQ(0, std::memcmp(block, octet + beta * head, head)) << "scales of block " << b;
        for (size_t k = 0; k < q_bytes; ++k) {
          const uint8_t want = f == WeightFormat::Q8 ? static_cast<uint8_t>(block[head + k] + 128) : block[head + k];
          ASSERT_EQ(want, octet[8 * head + (k / 8) * 64 + beta * 8 + k % 8]) << "block " << b << " byte " << k;
        }
      }
      std::vector<float> a(static_cast<size_t>(cols)), b(static_cast<size_t>(cols));
      w.row_f32(r, a.data());
      arranged.row_f32(r, b.data());
      ASSERT_EQ(a, b) << "row " << r;
    }
    const Matrix back = with_layout(arranged, quant::Layout::Blocks);
    EXPECT_EQ(back.layout, quant::Layout::Blocks);
    EXPECT_EQ(0, std::memcmp(back.data, w.data, w.bytes()));
  }
}

// Every set multiplies weights in either layout to the same bits: the one
// it prefers (KernelSet::weight_layout) natively, the other converted; on
// AVX512-VNNI, Octets take every tile shape (1-8 rows, 1-2 weight rows) and
// the pair steps after them.
TEST_P(KernelsIsa, QuantizedLinearGivesTheSameBitsInBothLayouts) {
  ThreadPool pool(2);
  const int64_t n = 23;
  // 3 octets + 7 blocks (the last partial), and exactly 4 octets.
  for (const int64_t k : {31 * 32 - 5, 32 * 32}) {
    for (const int64_t m : {1, 3, 8, 13, 45}) {
      const auto x = random_values(static_cast<size_t>(m * k), 91);
      for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
        SCOPED_TRACE(testing::Message() << weight_format_name(f) << " k=" << k << " m=" << m);
        const Matrix w = convert_matrix(random_matrix(n, k, 92), f);
        const Matrix arranged = with_layout(w, quant::Layout::Octets);
        std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
        const std::vector<float> bias = random_values(static_cast<size_t>(n), 93);
        kernels::linear(x.data(), m, w, bias.data(), want.data(), pool);
        kernels::linear(x.data(), m, arranged, bias.data(), got.data(), pool);
        ASSERT_EQ(want, got);
      }
    }
  }
}

// The integer path's only approximation is the activation's rounding: at
// most half a step (d_x / 2) per value, so |y - y_float| <= sum over k of
// |w_k| d_x(k) / 2, against the product with the same (dequantized) weights.
TEST_P(KernelsIsa, QuantizedLinearIsWithinTheActivationRoundingOfTheFloatProduct) {
  ThreadPool pool(2);
  const int64_t k = 544, n = 19, m = 3;
  const auto x = random_values(static_cast<size_t>(m * k), 71, 2.0f);
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    SCOPED_TRACE(weight_format_name(f));
    const Matrix w = convert_matrix(random_matrix(n, k, 72), f);
    std::vector<float> y(static_cast<size_t>(m * n));
    kernels::linear(x.data(), m, w, nullptr, y.data(), pool);
    std::vector<quant::BlockAct> xq(static_cast<size_t>(quant::blocks_per_row(k)));
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t i = 0; i < m; ++i) {
      quant::quantize_row_act(x.data() + i * k, k, xq.data());
      for (int64_t j = 0; j < n; ++j) {
        w.row_f32(j, row.data());
        double exact = 0, bound = 1e-5;
        for (int64_t c = 0; c < k; ++c) {
          exact += double(x[i * k + c]) * row[c];
          bound += std::abs(row[c]) * xq[c / 32].d * 0.5;
        }
        ASSERT_NEAR(y[i * n + j], exact, bound) << "row " << i << " column " << j;
        ASSERT_GT(bound, 1e-3) << "the bound must not be vacuous";
      }
    }
  }
}

// Files written by other tools may hold -128 in a q8 block (gptneo writes
// -127..127); the sign trick of the SIMD sets must still multiply it right.
TEST_P(KernelsIsa, Q8WeightOfMinus128IsMultipliedExactly) {
  ThreadPool pool(1);
  // Ten blocks a row: an octet of blocks and a pair, as the AVX512-VNNI
  // kernel takes them.
  const int64_t k = 320, nb = k / 32;
  Matrix w = convert_matrix(random_matrix(2, k, 81), WeightFormat::Q8);
  auto* blocks = reinterpret_cast<quant::BlockQ8*>(const_cast<void*>(w.data));
  for (int64_t b = 0; b < 2 * nb; b += 2)
    for (int i = 0; i < 32; ++i) blocks[b].q[i] = -128, blocks[b + 1].q[i] = static_cast<int8_t>(i % 2 ? -128 : 127);
  std::vector<float> x(static_cast<size_t>(k), 1.0f), got(2), want(2);
  kernels::linear(x.data(), 1, w, nullptr, got.data(), pool);
  reference::linear_int8(x.data(), 1, w, nullptr, want.data());
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(got[j], want[j], 1e-5 * std::abs(want[j]) + 1e-6) << "row " << j;
}

TEST_P(KernelsIsa, Bf16DotProductsAreUsedExactlyWhereTheCpuHasThem) {
  // The emulated set has every instruction; real AVX-512 CPUs only with AVX512-BF16.
  const bool expected = GetParam() == Isa::Avx512Emulated ||
                        (GetParam() == Isa::Avx512 && kernels::cpu_has_avx512_bf16_vnni());
  EXPECT_EQ(kernels::bf16_dot_products(), expected);
  EXPECT_EQ(kernels::active().bf16_dot_loop != nullptr, expected);
  if (expected) {
    // The bf16 rate is measured on the same instructions (64 operations each).
    EXPECT_EQ(kernels::active().bf16_dot_loop(10), 10.0 * 12 * 64);
  }
}

// avx512_emulated: the AVX-512 code, its instructions emulated, on AVX2 CPUs.
INSTANTIATE_TEST_SUITE_P(Kernels, KernelsIsa,
                         ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Emulated),
                         [](const auto& info) {
                           std::string name = kernels::isa_label(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(KernelsQuant, QuantizedRowsRoundTripWithinTheFormatsError) {
  const int64_t k = 100;  // three whole blocks and a partial one
  const Matrix m = random_matrix(3, k, 5);
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    const Matrix q = convert_matrix(m, f);
    EXPECT_EQ(q.row_bytes(), f == WeightFormat::Q8 ? 4u * 34 : 4u * 20);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < 3; ++r) {
      q.row_f32(r, row.data());
      for (int64_t i = 0; i < k; ++i) {
        // Values are in [-1, 1]: a step of the grid is 1/127 (q8) or 2/15 (q4).
        const double step = f == WeightFormat::Q8 ? 1.0 / 127 : 2.0 / 15;
        ASSERT_NEAR(row[i], m.f32()[r * k + i], step * 0.5 + 1e-3) << weight_format_name(f);
      }
    }
  }
}

TEST(KernelsIsaChoice, EnvironmentOverrideNamesAKnownKernelSet) {
  // The active set is one of the known ones, and its name is what isa_name says.
  const std::string name = kernels::isa_name();
  EXPECT_TRUE(name == "scalar" || name == "avx2" || name == "avx512" || name == "avx512-emulated") << name;
  EXPECT_THROW(kernels::set_active(static_cast<Isa>(99)), Error);
}

}  // namespace
}  // namespace gptneo
