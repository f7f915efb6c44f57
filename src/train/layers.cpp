#include "train/layers.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "train/gemm.h"

namespace gptneo::training {

namespace {

// Runs fn(begin, end) over [0, n) on the pool, or inline without one.
template <class F>
void par(ThreadPool* pool, int64_t n, int64_t grain, F&& fn) {
  if (pool && n > grain)
    pool->parallel_for(n, grain, fn);
  else if (n > 0)
    fn(int64_t{0}, n);
}

// e^x to about 2 ulp (Cephes' expf), in plain float arithmetic so that loops
// calling it vectorise: x = n·ln2 + r, e^r by a degree-6 polynomial, 2^n
// built in the exponent bits. Inputs are clamped where float over/underflows.
inline float exp_poly(float x) {
  x = std::min(88.3762626647949f, std::max(-87.3365447504f, x));
  float n = x * 1.44269504088896341f + 12582912.0f;  // round to nearest by the 1.5·2^23 trick
  n -= 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}
inline double exp_poly(double x) { return std::exp(std::min(x, 700.0)); }

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluC = 0.044715;

}  // namespace

// ---- LayerNorm ----------------------------------------------------------------------

template <class T>
void layer_norm_forward(const T* x, int64_t m, int64_t d, const T* gamma, const T* beta, T eps, T* y, T* mean,
                        T* rstd, ThreadPool* pool) {
  par(pool, m, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * d;
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += xr[i];
      const double mu = s / static_cast<double>(d);
      double v = 0;
      for (int64_t i = 0; i < d; ++i) v += (xr[i] - mu) * (xr[i] - mu);
      const T rs = static_cast<T>(1.0 / std::sqrt(v / static_cast<double>(d) + static_cast<double>(eps)));
      const T mt = static_cast<T>(mu);
      T* yr = y + r * d;
      for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mt) * rs * gamma[i] + beta[i];
      mean[r] = mt;
      rstd[r] = rs;
    }
  });
}

template <class T>
void layer_norm_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma, int64_t m, int64_t d,
                         T* dx, T* dgamma, T* dbeta, ThreadPool* pool) {
  // dx = rstd · (dn - mean(dn) - n · mean(dn · n)), with n the normalised
  // input and dn = dy · gamma.
  par(pool, m, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * d;
      const T* dyr = dy + r * d;
      const T mu = mean[r], rs = rstd[r];
      double sum_dn = 0, sum_dn_n = 0;
      for (int64_t i = 0; i < d; ++i) {
        const T n = (xr[i] - mu) * rs;
        const T dn = dyr[i] * gamma[i];
        sum_dn += dn;
        sum_dn_n += dn * n;
      }
      const T a = static_cast<T>(sum_dn / static_cast<double>(d));
      const T b = static_cast<T>(sum_dn_n / static_cast<double>(d));
      T* dxr = dx + r * d;
      for (int64_t i = 0; i < d; ++i) {
        const T n = (xr[i] - mu) * rs;
        dxr[i] += rs * (dyr[i] * gamma[i] - a - n * b);
      }
    }
  });
  // Parameter gradients column by column, each summed over rows in order
  // (deterministic whatever the thread count).
  par(pool, d, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < m; ++r) {
      const T* xr = x + r * d;
      const T* dyr = dy + r * d;
      const T mu = mean[r], rs = rstd[r];
      for (int64_t i = c0; i < c1; ++i) {
        dgamma[i] += dyr[i] * (xr[i] - mu) * rs;
        dbeta[i] += dyr[i];
      }
    }
  });
}

// ---- activations ------------------------------------------------------------------------

Act act_from_name(const std::string& name) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Act::GeluNew;
  if (name == "gelu") return Act::Gelu;
  if (name == "relu") return Act::Relu;
  throw Error(fmt::format("training does not support activation_function \"{}\" (gelu_new, gelu or relu)", name));
}

template <class T>
void act_forward(Act a, const T* x, T* y, int64_t n, ThreadPool* pool) {
  par(pool, n, 4096, [&](int64_t i0, int64_t i1) {
    switch (a) {
      case Act::GeluNew:
        // 0.5·v·(1 + tanh(u)) = v·σ(2u) = v / (1 + e^{-2u}): the same value
        // without the cancellation of 1 + tanh(u) where tanh(u) ≈ -1.
        for (int64_t i = i0; i < i1; ++i) {
          const T v = x[i];
          const T u = T(kSqrt2OverPi) * (v + T(kGeluC) * v * v * v);
          y[i] = v / (T(1) + exp_poly(-(u + u)));
        }
        break;
      case Act::Gelu:
        for (int64_t i = i0; i < i1; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(0.70710678118654752)));
        break;
      case Act::Relu:
        for (int64_t i = i0; i < i1; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
        break;
    }
  });
}

template <class T>
void act_backward(Act a, const T* x, const T* dy, T* dx, int64_t n, ThreadPool* pool) {
  par(pool, n, 4096, [&](int64_t i0, int64_t i1) {
    switch (a) {
      case Act::GeluNew:
        // d/dv [v·σ(2u)] = σ + 2·v·u'·σ·(1 - σ), with 1 - σ = e·σ for e = e^{-2u}.
        for (int64_t i = i0; i < i1; ++i) {
          const T v = x[i];
          const T u = T(kSqrt2OverPi) * (v + T(kGeluC) * v * v * v);
          const T e = exp_poly(-(u + u));
          const T sig = T(1) / (T(1) + e);
          const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * v * v);
          dx[i] = dy[i] * sig * (T(1) + T(2) * v * du * e * sig);
        }
        break;
      case Act::Gelu:
        for (int64_t i = i0; i < i1; ++i) {
          const T v = x[i];
          const T cdf = T(0.5) * (T(1) + std::erf(v * T(0.70710678118654752)));
          const T pdf = std::exp(T(-0.5) * v * v) * T(0.3989422804014327);
          dx[i] = dy[i] * (cdf + v * pdf);
        }
        break;
      case Act::Relu:
        for (int64_t i = i0; i < i1; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
        break;
    }
  });
}

// ---- bias ---------------------------------------------------------------------------------

template <class T>
void add_bias(T* y, int64_t m, int64_t n, const T* b, ThreadPool* pool) {
  par(pool, m, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < n; ++j) y[r * n + j] += b[j];
  });
}

template <class T>
void bias_backward(const T* dy, int64_t m, int64_t n, T* db, ThreadPool* pool) {
  par(pool, n, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = c0; j < c1; ++j) db[j] += dy[r * n + j];
  });
}

template <class T>
void add_inplace(const T* x, T* y, int64_t n, ThreadPool* pool) {
  par(pool, n, 8192, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] += x[i];
  });
}

// ---- attention --------------------------------------------------------------------------------

namespace {

// The keys visible to query i: [first_key(i), i].
inline int64_t first_key(const AttentionShape& s, int64_t i) { return s.window > 0 ? std::max<int64_t>(0, i - s.window + 1) : 0; }

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const T* qkv, T* probs, T* y, ThreadPool* pool) {
  const int64_t H = s.hidden(), Tn = s.T, hd = s.head_dim;
  par(pool, s.B * s.heads, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / s.heads, h = p % s.heads;
      const T* q = qkv + b * Tn * 3 * H + h * hd;
      const T* k = q + H;
      const T* v = q + 2 * H;
      T* P = probs + p * Tn * Tn;
      // scores = q·kᵀ for every pair (the masked ones are overwritten below)
      gemm(GemmArgs{Trans::No, Trans::Yes, Tn, Tn, hd, 3 * H, 3 * H, Tn, false}, q, k, P, nullptr);
      for (int64_t i = 0; i < Tn; ++i) {
        T* row = P + i * Tn;
        const int64_t j0 = first_key(s, i);
        T mx = row[j0];
        for (int64_t j = j0 + 1; j <= i; ++j) mx = std::max(mx, row[j]);
        T sum = 0;
        for (int64_t j = j0; j <= i; ++j) sum += (row[j] = exp_poly(row[j] - mx));
        const T inv = T(1) / sum;
        for (int64_t j = 0; j < j0; ++j) row[j] = 0;
        for (int64_t j = j0; j <= i; ++j) row[j] *= inv;
        for (int64_t j = i + 1; j < Tn; ++j) row[j] = 0;
      }
      gemm(GemmArgs{Trans::No, Trans::No, Tn, hd, Tn, Tn, 3 * H, H, false}, P, v, y + b * Tn * H + h * hd, nullptr);
    }
  });
}

template <class T>
void attention_backward(const AttentionShape& s, const T* qkv, const T* probs, const T* dy, T* dqkv,
                        ThreadPool* pool) {
  const int64_t H = s.hidden(), Tn = s.T, hd = s.head_dim;
  par(pool, s.B * s.heads, 1, [&](int64_t p0, int64_t p1) {
    thread_local std::vector<T> dp_buf;
    dp_buf.resize(static_cast<size_t>(Tn * Tn));
    T* dP = dp_buf.data();
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / s.heads, h = p % s.heads;
      const int64_t off = b * Tn * 3 * H + h * hd;
      const T* q = qkv + off;
      const T* k = q + H;
      const T* v = q + 2 * H;
      T* dq = dqkv + off;
      T* dk = dq + H;
      T* dv = dq + 2 * H;
      const T* P = probs + p * Tn * Tn;
      const T* dO = dy + b * Tn * H + h * hd;
      // dP = dO·vᵀ, dv = Pᵀ·dO
      gemm(GemmArgs{Trans::No, Trans::Yes, Tn, Tn, hd, H, 3 * H, Tn, false}, dO, v, dP, nullptr);
      gemm(GemmArgs{Trans::Yes, Trans::No, Tn, hd, Tn, Tn, H, 3 * H, false}, P, dO, dv, nullptr);
      // softmax backward: dS = P ⊙ (dP - Σ_j P·dP); zero where masked (P = 0)
      for (int64_t i = 0; i < Tn; ++i) {
        const T* pr = P + i * Tn;
        T* dr = dP + i * Tn;
        const int64_t j0 = first_key(s, i);
        T dot = 0;
        for (int64_t j = j0; j <= i; ++j) dot += pr[j] * dr[j];
        for (int64_t j = 0; j < Tn; ++j) dr[j] = pr[j] * (dr[j] - dot);
      }
      // dq = dS·k, dk = dSᵀ·q
      gemm(GemmArgs{Trans::No, Trans::No, Tn, hd, Tn, Tn, 3 * H, 3 * H, false}, dP, k, dq, nullptr);
      gemm(GemmArgs{Trans::Yes, Trans::No, Tn, hd, Tn, Tn, 3 * H, 3 * H, false}, dP, q, dk, nullptr);
    }
  });
}

// ---- embeddings -----------------------------------------------------------------------------------

template <class T>
void embedding_forward(const int32_t* tokens, int64_t B, int64_t Tn, int64_t d, const T* wte, const T* wpe, T* x) {
  for (int64_t r = 0; r < B * Tn; ++r) {
    const T* e = wte + static_cast<int64_t>(tokens[r]) * d;
    const T* pos = wpe + (r % Tn) * d;
    for (int64_t i = 0; i < d; ++i) x[r * d + i] = e[i] + pos[i];
  }
}

template <class T>
void embedding_backward(const int32_t* tokens, int64_t B, int64_t Tn, int64_t d, const T* dx, T* dwte, T* dwpe) {
  for (int64_t r = 0; r < B * Tn; ++r) {
    T* e = dwte + static_cast<int64_t>(tokens[r]) * d;
    T* pos = dwpe + (r % Tn) * d;
    for (int64_t i = 0; i < d; ++i) {
      e[i] += dx[r * d + i];
      pos[i] += dx[r * d + i];
    }
  }
}

// ---- output head + cross-entropy ------------------------------------------------------------------------

template <class T>
double head_loss(const T* x, int64_t rows, int64_t d, const T* wte, int64_t vocab, const int32_t* targets, T scale,
                 T* dx, T* dwte, int64_t chunk_rows, ThreadPool* pool) {
  thread_local std::vector<T> logits_buf;
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  chunk_rows = std::max<int64_t>(1, std::min(chunk_rows, rows));
  logits_buf.resize(static_cast<size_t>(chunk_rows * vocab));
  T* logits = logits_buf.data();
  for (int64_t c0 = 0; c0 < rows; c0 += chunk_rows) {
    const int64_t n = std::min(chunk_rows, rows - c0);
    gemm(GemmArgs{Trans::No, Trans::Yes, n, vocab, d, d, d, vocab, false}, x + c0 * d, wte, logits, pool);
    par(pool, n, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* l = logits + r * vocab;
        const int32_t t = targets[c0 + r];
        if (t < 0) {
          if (dx) std::fill(l, l + vocab, T(0));
          continue;
        }
        T mx = l[0];
        for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, l[j]);
        const T target_logit = l[t];
        double sum = 0;
        if (dx) {
          for (int64_t j = 0; j < vocab; ++j) sum += (l[j] = exp_poly(l[j] - mx));
        } else {
          for (int64_t j = 0; j < vocab; ++j) sum += exp_poly(l[j] - mx);
        }
        row_loss[static_cast<size_t>(c0 + r)] =
            (std::log(sum) + static_cast<double>(mx) - static_cast<double>(target_logit)) * static_cast<double>(scale);
        if (dx) {
          // d(loss·scale)/dlogits = (softmax - onehot) · scale
          const T k = static_cast<T>(static_cast<double>(scale) / sum);
          for (int64_t j = 0; j < vocab; ++j) l[j] *= k;
          l[t] -= scale;
        }
      }
    });
    if (dx) gemm(GemmArgs{Trans::No, Trans::No, n, d, vocab, vocab, d, d, false}, logits, wte, dx + c0 * d, pool);
    if (dx && dwte)
      gemm(GemmArgs{Trans::Yes, Trans::No, vocab, d, n, vocab, d, d, true}, logits, x + c0 * d, dwte, pool);
  }
  double total = 0;
  for (double v : row_loss) total += v;
  return total;
}

// ---- instantiations ------------------------------------------------------------------------------------------

#define GPTNEO_TRAIN_LAYERS(T)                                                                                        \
  template void layer_norm_forward<T>(const T*, int64_t, int64_t, const T*, const T*, T, T*, T*, T*, ThreadPool*); \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, T*, T*,  \
                                       T*, ThreadPool*);                                                            \
  template void act_forward<T>(Act, const T*, T*, int64_t, ThreadPool*);                                            \
  template void act_backward<T>(Act, const T*, const T*, T*, int64_t, ThreadPool*);                                 \
  template void add_bias<T>(T*, int64_t, int64_t, const T*, ThreadPool*);                                           \
  template void bias_backward<T>(const T*, int64_t, int64_t, T*, ThreadPool*);                                     \
  template void add_inplace<T>(const T*, T*, int64_t, ThreadPool*);                                                 \
  template void attention_forward<T>(const AttentionShape&, const T*, T*, T*, ThreadPool*);                         \
  template void attention_backward<T>(const AttentionShape&, const T*, const T*, const T*, T*, ThreadPool*);        \
  template void embedding_forward<T>(const int32_t*, int64_t, int64_t, int64_t, const T*, const T*, T*);            \
  template void embedding_backward<T>(const int32_t*, int64_t, int64_t, int64_t, const T*, T*, T*);                 \
  template double head_loss<T>(const T*, int64_t, int64_t, const T*, int64_t, const int32_t*, T, T*, T*, int64_t,   \
                               ThreadPool*);

GPTNEO_TRAIN_LAYERS(float)
GPTNEO_TRAIN_LAYERS(double)

}  // namespace gptneo::training
