// Forward and backward of every layer of GPT-Neo, written out one function
// per direction (in the manner of llm.c), over a batch of B sequences of
// T positions stored as M = B·T rows.
//
// Conventions: `x` inputs and `y` outputs of a forward; the backward of a
// layer takes dy and what the forward saved, ADDS the parameter gradients
// into dW/db (so micro-batches accumulate) and writes (or, where it says
// so, adds) the input gradient dx. Instantiated for float (training) and
// double (the finite-difference tests). `pool` may be nullptr.
#pragma once

#include <cstdint>
#include <string>

#include "core/thread_pool.h"

namespace gptneo::training {

// ---- LayerNorm (torch.nn.LayerNorm: biased variance) ----------------------------
// y = (x - mean) * rstd * gamma + beta per row of d; saves mean and rstd per row.
template <class T>
void layer_norm_forward(const T* x, int64_t m, int64_t d, const T* gamma, const T* beta, T eps, T* y, T* mean,
                        T* rstd, ThreadPool* pool);
// dx += ∂/∂x; dgamma, dbeta += their gradients.
template <class T>
void layer_norm_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma, int64_t m, int64_t d,
                         T* dx, T* dgamma, T* dbeta, ThreadPool* pool);

// ---- activations --------------------------------------------------------------
enum class Act { GeluNew, Gelu, Relu };
// Parses a Hugging Face activation_function name (gelu_new, gelu, relu);
// throws gptneo::Error for one the trainer does not have.
Act act_from_name(const std::string& name);
template <class T>
void act_forward(Act a, const T* x, T* y, int64_t n, ThreadPool* pool);
// dx = act'(x) * dy (dx may equal dy).
template <class T>
void act_backward(Act a, const T* x, const T* dy, T* dx, int64_t n, ThreadPool* pool);

// ---- bias -------------------------------------------------------------------------
// y[r, :] += b for m rows of n.
template <class T>
void add_bias(T* y, int64_t m, int64_t n, const T* b, ThreadPool* pool);
// db += sum over rows of dy.
template <class T>
void bias_backward(const T* dy, int64_t m, int64_t n, T* db, ThreadPool* pool);

// ---- causal self-attention (GPT-Neo: no 1/sqrt(d) scaling) -------------------------
struct AttentionShape {
  int64_t B = 0, T = 0, heads = 0, head_dim = 0;
  int64_t window = 0;  // > 0: key j is visible to query i only if i - window < j <= i (local layers)
  int64_t hidden() const { return heads * head_dim; }
};
// qkv: [M, 3·hidden] (q, then k, then v, heads side by side in each);
// y: [M, hidden] heads merged; probs: [B, heads, T, T] the softmax
// probabilities (zero where masked), saved for the backward.
template <class T>
void attention_forward(const AttentionShape& s, const T* qkv, T* probs, T* y, ThreadPool* pool);
// dqkv = gradient of qkv (written, not added).
template <class T>
void attention_backward(const AttentionShape& s, const T* qkv, const T* probs, const T* dy, T* dqkv,
                        ThreadPool* pool);

// ---- embeddings ----------------------------------------------------------------------
// x[r, :] = wte[tokens[r]] + wpe[r mod seq]
template <class T>
void embedding_forward(const int32_t* tokens, int64_t B, int64_t seq, int64_t d, const T* wte, const T* wpe, T* x);
template <class T>
void embedding_backward(const int32_t* tokens, int64_t B, int64_t seq, int64_t d, const T* dx, T* dwte, T* dwpe);

// ---- the tied output head and cross-entropy ------------------------------------------
// logits = x · wteᵀ over `rows` rows; per row r with targets[r] >= 0:
// loss_r = logsumexp(logits_r) - logits_r[target]. Returns the sum of
// loss_r · scale. When dx != nullptr, also the backward of that scaled sum:
// dx (written) and dwte (added; nullptr: not wanted, the embedding is frozen). Rows are processed in chunks so that at
// most `chunk_rows` rows of logits exist at once. The ignored targets (< 0)
// contribute nothing. Sets *counted to the number of targets used.
template <class T>
double head_loss(const T* x, int64_t rows, int64_t d, const T* wte, int64_t vocab, const int32_t* targets, T scale,
                 T* dx, T* dwte, int64_t chunk_rows, ThreadPool* pool);

// ---- small helpers -----------------------------------------------------------------------
// y[i] += x[i]
template <class T>
void add_inplace(const T* x, T* y, int64_t n, ThreadPool* pool);

}  // namespace gptneo::training
