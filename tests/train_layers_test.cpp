// Every layer's backward pass against central finite differences of its
// forward pass, in double on small shapes; the matrix product against a
// plain triple loop.
#include <cmath>
#include <functional>
#include <random>

#include <gtest/gtest.h>

#include "train/gemm.h"
#include "train/layers.h"

namespace gptneo::training {
namespace {

std::vector<double> random_vector(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

double weighted_sum(const std::vector<double>& y, const std::vector<double>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * w[i];
  return s;
}

// Checks analytic[i] against (f(x + h e_i) - f(x - h e_i)) / 2h for every i.
void expect_matches_finite_differences(std::vector<double>& x, const std::function<double()>& f,
                                       const std::vector<double>& analytic, const std::string& what,
                                       double tol = 1e-7) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const double h = 1e-5;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, tol * std::max(1.0, std::abs(numeric))) << what << "[" << i << "]";
  }
}

TEST(TrainLayers, LayerNormBackwardMatchesFiniteDifferences) {
  const int64_t m = 3, d = 7;
  auto x = random_vector(m * d, 1), gamma = random_vector(d, 2), beta = random_vector(d, 3), w = random_vector(m * d, 4);
  std::vector<double> y(m * d), mean(m), rstd(m);
  auto loss = [&] {
    layer_norm_forward(x.data(), m, d, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data(), nullptr);
    return weighted_sum(y, w);
  };
  loss();
  std::vector<double> dx(m * d, 0.0), dgamma(d, 0.0), dbeta(d, 0.0);
  layer_norm_backward(w.data(), x.data(), mean.data(), rstd.data(), gamma.data(), m, d, dx.data(), dgamma.data(),
                      dbeta.data(), nullptr);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(gamma, loss, dgamma, "dgamma");
  expect_matches_finite_differences(beta, loss, dbeta, "dbeta");
}

TEST(TrainLayers, LayerNormBackwardAddsToTheGradients) {
  const int64_t m = 2, d = 4;
  auto x = random_vector(m * d, 5), gamma = random_vector(d, 6), beta = random_vector(d, 7), dy = random_vector(m * d, 8);
  std::vector<double> y(m * d), mean(m), rstd(m);
  layer_norm_forward(x.data(), m, d, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data(), nullptr);
  std::vector<double> dx1(m * d, 0.0), dg1(d, 0.0), db1(d, 0.0), dx2(m * d, 1.0), dg2(d, 2.0), db2(d, 3.0);
  layer_norm_backward(dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), m, d, dx1.data(), dg1.data(),
                      db1.data(), nullptr);
  layer_norm_backward(dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), m, d, dx2.data(), dg2.data(),
                      db2.data(), nullptr);
  for (int64_t i = 0; i < m * d; ++i) EXPECT_NEAR(dx2[i], dx1[i] + 1.0, 1e-12);
  for (int64_t i = 0; i < d; ++i) {
    EXPECT_NEAR(dg2[i], dg1[i] + 2.0, 1e-12);
    EXPECT_NEAR(db2[i], db1[i] + 3.0, 1e-12);
  }
}

TEST(TrainLayers, ActivationBackwardsMatchFiniteDifferences) {
  for (Act a : {Act::GeluNew, Act::Gelu, Act::Relu}) {
    auto x = random_vector(50, 9, 4.0), w = random_vector(50, 10);
    std::vector<double> y(50);
    auto loss = [&] {
      act_forward(a, x.data(), y.data(), 50, nullptr);
      return weighted_sum(y, w);
    };
    std::vector<double> dx(50);
    act_backward(a, x.data(), w.data(), dx.data(), 50, nullptr);
    expect_matches_finite_differences(x, loss, dx, "activation " + std::to_string(static_cast<int>(a)));
  }
}

TEST(TrainLayers, GeluNewMatchesItsDefinitionInFloat) {
  // float uses a polynomial exp: check it against the tanh formula.
  std::vector<float> x(2001), y(2001);
  for (int i = 0; i <= 2000; ++i) x[i] = -10.0f + 0.01f * static_cast<float>(i);
  act_forward(Act::GeluNew, x.data(), y.data(), 2001, nullptr);
  for (int i = 0; i <= 2000; ++i) {
    const double v = x[i];
    const double ref = 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y[i], ref, 2e-7 * std::max(1.0, std::abs(ref))) << v;
  }
}

void check_attention(int64_t window) {
  const AttentionShape s{2, 5, 2, 3, window};
  const int64_t M = s.B * s.T, H = s.hidden();
  auto qkv = random_vector(M * 3 * H, 11), w = random_vector(M * H, 12);
  std::vector<double> probs(s.B * s.heads * s.T * s.T), y(M * H);
  auto loss = [&] {
    attention_forward(s, qkv.data(), probs.data(), y.data(), nullptr);
    return weighted_sum(y, w);
  };
  loss();
  // The mask: query i sees keys (i - window, i] only.
  for (int64_t p = 0; p < s.B * s.heads; ++p)
    for (int64_t i = 0; i < s.T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < s.T; ++j) {
        const double pr = probs[(p * s.T + i) * s.T + j];
        const bool visible = j <= i && (window == 0 || i - j < window);
        if (!visible) EXPECT_EQ(pr, 0.0) << "query " << i << " key " << j;
        sum += pr;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
  std::vector<double> dqkv(M * 3 * H, 0.0);
  attention_backward(s, qkv.data(), probs.data(), w.data(), dqkv.data(), nullptr);
  expect_matches_finite_differences(qkv, loss, dqkv, "dqkv window " + std::to_string(window));
}

TEST(TrainLayers, GlobalAttentionBackwardMatchesFiniteDifferences) { check_attention(0); }
TEST(TrainLayers, LocalAttentionBackwardMatchesFiniteDifferences) { check_attention(2); }

TEST(TrainLayers, AttentionDoesNotScaleScores) {
  // One head of dimension 1, two positions: p(key 0 | query 1) = e^{q1 k0} / (e^{q1 k0} + e^{q1 k1}).
  const AttentionShape s{1, 2, 1, 1, 0};
  const std::vector<double> qkv = {0.0, 0.5, 1.0, /* row 1 */ 2.0, -1.0, 3.0};  // q, k, v per row
  std::vector<double> probs(4), y(2);
  attention_forward(s, qkv.data(), probs.data(), y.data(), nullptr);
  const double a = std::exp(2.0 * 0.5), b = std::exp(2.0 * -1.0);
  EXPECT_NEAR(probs[2], a / (a + b), 1e-12);
  EXPECT_NEAR(y[1], (a * 1.0 + b * 3.0) / (a + b), 1e-12);
}

TEST(TrainLayers, HeadLossBackwardMatchesFiniteDifferences) {
  const int64_t rows = 4, d = 3, vocab = 7;
  auto x = random_vector(rows * d, 13), wte = random_vector(vocab * d, 14);
  const std::vector<int32_t> targets = {3, -1, 0, 6};
  const double scale = 0.25;
  auto loss = [&] {
    return head_loss(x.data(), rows, d, wte.data(), vocab, targets.data(), scale, static_cast<double*>(nullptr),
                     static_cast<double*>(nullptr), 2, nullptr);
  };
  std::vector<double> dx(rows * d), dwte(vocab * d, 0.0);
  const double l = head_loss(x.data(), rows, d, wte.data(), vocab, targets.data(), scale, dx.data(), dwte.data(), 3,
                             nullptr);
  EXPECT_NEAR(l, loss(), 1e-12);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(wte, loss, dwte, "dwte");
  for (int64_t i = 0; i < d; ++i) EXPECT_EQ(dx[1 * d + i], 0.0) << "an ignored target has no gradient";
}

TEST(TrainLayers, EmbeddingBackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 3, d = 2, V = 4;
  const std::vector<int32_t> tokens = {1, 3, 1, 0, 1, 2};
  auto wte = random_vector(V * d, 15), wpe = random_vector(T * d, 16), w = random_vector(B * T * d, 17);
  std::vector<double> x(B * T * d);
  auto loss = [&] {
    embedding_forward(tokens.data(), B, T, d, wte.data(), wpe.data(), x.data());
    return weighted_sum(x, w);
  };
  std::vector<double> dwte(V * d, 0.0), dwpe(T * d, 0.0);
  embedding_backward(tokens.data(), B, T, d, w.data(), dwte.data(), dwpe.data());
  expect_matches_finite_differences(wte, loss, dwte, "dwte");
  expect_matches_finite_differences(wpe, loss, dwpe, "dwpe");
}

TEST(TrainLayers, LinearBackwardMatchesFiniteDifferences) {
  const int64_t m = 5, in = 7, out = 9;
  auto x = random_vector(m * in, 18), W = random_vector(out * in, 19), w = random_vector(m * out, 20);
  std::vector<double> y(m * out);
  auto loss = [&] {
    linear_forward(x.data(), m, in, W.data(), out, y.data(), nullptr);
    return weighted_sum(y, w);
  };
  std::vector<double> dx(m * in), dW(out * in, 0.0);
  linear_backward_input(w.data(), m, out, W.data(), in, dx.data(), false, nullptr);
  linear_backward_weight(w.data(), m, out, x.data(), in, dW.data(), nullptr);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(W, loss, dW, "dW");
}

// ---- the matrix product -------------------------------------------------------------

template <class T>
void check_gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, bool accumulate, ThreadPool* pool) {
  const int64_t lda = (ta == Trans::No ? K : M) + 3, ldb = (tb == Trans::No ? N : K) + 1, ldc = N + 2;
  std::mt19937 rng(static_cast<uint32_t>(M * 131 + N * 17 + K));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> A(static_cast<size_t>((ta == Trans::No ? M : K) * lda)), B(static_cast<size_t>((tb == Trans::No ? K : N) * ldb)),
      C(static_cast<size_t>(M * ldc));
  for (auto& v : A) v = static_cast<T>(u(rng));
  for (auto& v : B) v = static_cast<T>(u(rng));
  for (auto& v : C) v = static_cast<T>(u(rng));
  const std::vector<T> C0 = C;
  gemm(GemmArgs{ta, tb, M, N, K, lda, ldb, ldc, accumulate}, A.data(), B.data(), C.data(), pool);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = accumulate ? static_cast<double>(C0[i * ldc + j]) : 0.0;
      for (int64_t k = 0; k < K; ++k)
        ref += static_cast<double>(ta == Trans::No ? A[i * lda + k] : A[k * lda + i]) *
               static_cast<double>(tb == Trans::No ? B[k * ldb + j] : B[j * ldb + k]);
      ASSERT_NEAR(C[i * ldc + j], ref, (std::is_same_v<T, float> ? 2e-5 : 1e-12) * (1 + std::sqrt(double(K))))
          << "M " << M << " N " << N << " K " << K << " ta " << int(ta) << " tb " << int(tb) << " at " << i << "," << j;
    }
  // Nothing outside the M × N block of C is touched.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], C0[i * ldc + j]);
}

TEST(TrainGemm, MatchesTripleLoopForAllTransposesAndEdgeShapes) {
  ThreadPool pool(2);
  for (Trans ta : {Trans::No, Trans::Yes})
    for (Trans tb : {Trans::No, Trans::Yes})
      for (const auto& [M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
               {1, 1, 1}, {6, 16, 5}, {7, 17, 3}, {13, 40, 300}, {130, 33, 20}, {2, 2100, 9}, {250, 5, 600}})
        for (bool acc : {false, true}) {
          check_gemm<float>(ta, tb, M, N, K, acc, &pool);
          check_gemm<float>(ta, tb, M, N, K, acc, nullptr);
          check_gemm<double>(ta, tb, M, N, K, acc, &pool);
        }
}

TEST(TrainGemm, ZeroDepthClearsOrKeeps) {
  std::vector<float> C = {1, 2, 3, 4};
  gemm(GemmArgs{Trans::No, Trans::No, 2, 2, 0, 1, 2, 2, true}, C.data(), C.data(), C.data(), nullptr);
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4}));
  gemm(GemmArgs{Trans::No, Trans::No, 2, 2, 0, 1, 2, 2, false}, C.data(), C.data(), C.data(), nullptr);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0}));
}

TEST(TrainGemm, Bf16OperandsRoundBeforeMultiplying) {
  // 1 + 2^-10 is not a bfloat16 (8 bits of mantissa): it rounds to 1.
  const std::vector<float> a = {1.0f + 1.0f / 1024}, b = {1.0f};
  std::vector<float> c(1);
  set_gemm_bf16_operands(true);
  gemm(GemmArgs{Trans::No, Trans::No, 1, 1, 1, 1, 1, 1, false}, a.data(), b.data(), c.data(), nullptr);
  set_gemm_bf16_operands(false);
  EXPECT_EQ(c[0], 1.0f);
  gemm(GemmArgs{Trans::No, Trans::No, 1, 1, 1, 1, 1, 1, false}, a.data(), b.data(), c.data(), nullptr);
  EXPECT_EQ(c[0], 1.0f + 1.0f / 1024);
}

}  // namespace
}  // namespace gptneo::training
