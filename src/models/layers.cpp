#include "models/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "io/quantized_weights.h"

namespace gptneo {

// ---- loading weights -----------------------------------------------------------

std::vector<float> WeightLoader::vector(const std::string& name, int64_t n) const {
  const TensorView& t = ck_.get(name, {n});
  std::vector<float> out(static_cast<size_t>(n));
  if (!dtype_is_float(t.dtype))
    throw Error(fmt::format("tensor '{}' in {} has dtype {}, expected a float type", name, t.source,
                            dtype_name(t.dtype)));
  convert_to_f32(t.dtype, t.data, out.size(), out.data());
  return out;
}

// Quantizing a large model takes long on one thread; conversions at load
// use this pool (its threads sleep once loading is done).
static ThreadPool& conversion_pool() {
  static ThreadPool pool(0);
  return pool;
}

Matrix WeightLoader::matrix_f32(const std::string& name, int64_t rows, int64_t cols) const {
  if (is_quantized_tensor(ck_, name))
    return convert_matrix(quantized_matrix(ck_, name, rows, cols), WeightFormat::F32, &conversion_pool());
  const TensorView& t = ck_.get(name, {rows, cols});
  if (!dtype_is_float(t.dtype))
    throw Error(fmt::format("tensor '{}' in {} has dtype {}, expected a float type", name, t.source,
                            dtype_name(t.dtype)));
  Matrix m = make_f32_matrix(rows, cols);
  convert_to_f32(t.dtype, t.data, static_cast<size_t>(rows * cols), const_cast<float*>(m.f32()));
  return m;
}

// Weights quantized at load are arranged in the layout the kernels multiply
// fastest (kernels::arranged_for_products: on AVX512-VNNI, q8 / q4 octets;
// prompts' products 5-10 % faster). A quantized folder loaded in its own
// format is used where it is mapped, as its file holds it (Blocks, which
// every kernel set reads): no copy at load.
Matrix WeightLoader::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  if (is_quantized_tensor(ck_, name)) {
    const Matrix q = quantized_matrix(ck_, name, rows, cols);
    if (q.format == format_) return q;
    return arranged(convert_matrix(q, format_, &conversion_pool()));
  }
  return arranged(convert_matrix(matrix_f32(name, rows, cols), format_, &conversion_pool()));
}

Matrix WeightLoader::arranged(const Matrix& m) const {
  return kernels::arranged_for_products(m, &conversion_pool());
}

Matrix WeightLoader::stacked(const std::vector<std::string>& names, int64_t rows_each, int64_t cols) const {
  // Quantized parts that lie back to back in the file (quantize_model writes
  // them so) are already the stacked matrix.
  std::vector<Matrix> parts;
  for (const auto& n : names)
    if (is_quantized_tensor(ck_, n)) parts.push_back(quantized_matrix(ck_, n, rows_each, cols));
  bool adjacent = parts.size() == names.size() && parts[0].format == format_;
  for (size_t i = 1; adjacent && i < parts.size(); ++i)
    adjacent = parts[i - 1].row(rows_each) == parts[i].row(0);
  if (adjacent) {
    Matrix all = parts[0];
    all.rows = rows_each * static_cast<int64_t>(names.size());
    return all;
  }
  Matrix all = make_f32_matrix(rows_each * static_cast<int64_t>(names.size()), cols);
  for (size_t i = 0; i < names.size(); ++i) {
    const Matrix part = matrix_f32(names[i], rows_each, cols);
    std::memcpy(const_cast<float*>(all.f32()) + i * rows_each * cols, part.f32(),
                static_cast<size_t>(rows_each * cols) * sizeof(float));
  }
  return arranged(convert_matrix(all, format_, &conversion_pool()));
}

LayerNorm LayerNorm::load(const WeightLoader& w, const std::string& prefix, int64_t dim, float eps) {
  return LayerNorm{w.vector(prefix + ".weight", dim), w.vector(prefix + ".bias", dim), eps};
}

void LayerNorm::apply(const float* x, int64_t rows, float* y) const {
  kernels::layer_norm(x, rows, static_cast<int64_t>(gamma.size()), gamma.data(), beta.data(), eps, y);
}

Linear Linear::load(const WeightLoader& w, const std::string& prefix, int64_t out, int64_t in, bool bias) {
  Linear l;
  l.w = w.matrix(prefix + ".weight", out, in);
  if (bias) l.b = w.vector(prefix + ".bias", out);
  return l;
}

void Linear::apply(const float* x, int64_t rows, float* y, ThreadPool& pool) const {
  kernels::linear(x, rows, w, b.empty() ? nullptr : b.data(), y, pool);
}

// ---- MLP ----------------------------------------------------------------------------

void Mlp::forward(const float* x, int64_t rows, float* out, std::vector<float>& hidden_buf,
                  ThreadPool& pool) const {
  const int64_t inner = fc_in.w.rows;
  hidden_buf.resize(static_cast<size_t>(rows * inner));
  fc_in.apply(x, rows, hidden_buf.data(), pool);
  pool.parallel_for(rows * inner, 4096, [&](int64_t begin, int64_t end) {
    kernels::activate(act, hidden_buf.data() + begin, end - begin);
  });
  fc_out.apply(hidden_buf.data(), rows, out, pool);
}

// ---- attention ------------------------------------------------------------------

void apply_rotary(float* v, int64_t heads, int64_t head_dim, int64_t rotary_dim, int64_t position) {
  // The frequencies are computed in float32 as the reference does
  // (1 / 10000^(2i/d), then position × frequency), so the angles match it.
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const float inv_freq = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
    const float angle = static_cast<float>(position) * inv_freq;
    const float s = static_cast<float>(std::sin(static_cast<double>(angle)));
    const float c = static_cast<float>(std::cos(static_cast<double>(angle)));
    for (int64_t h = 0; h < heads; ++h) {
      float* p = v + h * head_dim + 2 * i;
      const float x0 = p[0], x1 = p[1];
      p[0] = x0 * c - x1 * s;
      p[1] = x1 * c + x0 * s;
    }
  }
}

void Attention::forward(const float* x, const BatchLayout& batch, float* out, std::vector<float>& scratch,
                        ThreadPool& pool) const {
  const int64_t rows = batch.rows();
  const int64_t hidden = heads * head_dim;
  // scratch: [rows, 3 × hidden] projections, then [rows, hidden] attention output.
  scratch.resize(static_cast<size_t>(rows * 4 * hidden));
  float* qkv_rows = scratch.data();
  float* att = scratch.data() + rows * 3 * hidden;
  qkv.apply(x, rows, qkv_rows, pool);
  if (rotary_dim > 0) {
    for (int64_t r = 0; r < rows; ++r) {
      float* q = qkv_rows + r * 3 * hidden;
      apply_rotary(q, heads, head_dim, rotary_dim, batch.positions[r]);           // queries
      apply_rotary(q + hidden, heads, head_dim, rotary_dim, batch.positions[r]);  // keys
    }
  }
  // The batch's keys and values go into the caches as each (sequence,
  // head) is attended where that is safe, while the key tile they join is
  // still in cache from the scores (and with no pass of its own): 125M q8,
  // batch 8, the separate pass took 0.48 ms of a 10.4 ms step.
  const bool store = can_store_while_attending(batch);
  attend(qkv_rows, batch, att, store, pool);
  if (!store) store_kv(qkv_rows, batch, pool);
  this->out.apply(att, rows, out, pool);
}

// Whether no work item of attend() can read a cached position that another
// item's stores overwrite. Global layers overwrite nothing. A local layer's
// ring of slots(layer) positions overwrites position p - slots when it
// stores p (none while p < slots); the batch's queries at [start, start +
// rows) read back to max(0, start - window + 1), so the new rows displace
// only positions none of them reads while start + rows - 1 - slots is below
// that: with the window behind them, while rows <= slots - window + 1 (the
// ring's slack, plus one); in a cache of fewer positions than window +
// slack (a sequence's capacity is its prompt and reply), always. (Checking
// only the first case, the bench's 160-position caches stored the local
// layers' rows in a pass of their own.)
bool Attention::can_store_while_attending(const BatchLayout& batch) const {
  if (window == 0) return true;
  return std::all_of(batch.seqs.begin(), batch.seqs.end(), [&](const BatchLayout::Seq& seq) {
    const int64_t last_displaced = seq.start + seq.rows - 1 - seq.cache->slots(layer);
    return last_displaced < std::max<int64_t>(0, seq.start - window + 1);
  });
}

namespace {

// Queries of one sequence and head attended together: each key and value
// they read is loaded once for all of them (prompts; a decoded token is a
// block of one).
constexpr int64_t kQueryBlock = 16;

// Calls fn(E{}) with E the element type of `cache`'s keys and values
// (float, or uint16_t: f16 bits).
template <class Fn>
void with_element_type(const KVCacheImpl& cache, Fn&& fn) {
  if (cache.format() == KVCacheFormat::F16)
    fn(uint16_t{});
  else
    fn(float{});
}

// Grain of the loops over (sequence, head) that copy a batch's keys and
// values: waking the other threads costs more than copying one or a few
// rows (decoding one sequence), so those run on the calling thread.
int64_t copy_grain(const BatchLayout& batch, int64_t items) { return batch.rows() < 4 ? items : 1; }

// The keys of a batch's new rows in the KV cache's tiled layout, per
// sequence and head, so that queries read keys of the batch the way they
// read cached ones (kernels::attention_scores_tiled): sequence s, head h at
// data + (offset[s] + h × tiles(s)) × head_dim × kKeyTile, its row i as key
// i of those tiles.
struct BatchKeyTiles {
  std::vector<float> data;
  std::vector<int64_t> offset;  // first tile of each sequence

  static int64_t tiles(int64_t rows) { return (rows + kernels::kKeyTile - 1) / kernels::kKeyTile; }

  void build(const float* qkv_rows, const BatchLayout& batch, int64_t heads, int64_t head_dim, ThreadPool& pool) {
    const int64_t hidden = heads * head_dim, T = kernels::kKeyTile;
    offset.assign(batch.seqs.size(), 0);
    int64_t total = 0;
    for (size_t s = 0; s < batch.seqs.size(); ++s) {
      offset[s] = total;
      total += heads * tiles(batch.seqs[s].rows);
    }
    data.resize(static_cast<size_t>(total * head_dim * T));
    const auto n_seqs = static_cast<int64_t>(batch.seqs.size());
    pool.parallel_for(n_seqs * heads, copy_grain(batch, n_seqs * heads), [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t s = item / heads, h = item % heads;
        const BatchLayout::Seq& seq = batch.seqs[static_cast<size_t>(s)];
        float* t = head(s, h, seq.rows, head_dim);
        for (int64_t i = 0; i < seq.rows; ++i) {
          const float* k = qkv_rows + (seq.first_row + i) * 3 * hidden + hidden + h * head_dim;
          float* dst = t + (i / T) * head_dim * T + i % T;
          for (int64_t c = 0; c < head_dim; ++c) dst[c * T] = k[c];
        }
      }
    });
  }
  float* head(int64_t s, int64_t h, int64_t rows, int64_t head_dim) {
    return data.data() + (offset[static_cast<size_t>(s)] + h * tiles(rows)) * head_dim * kernels::kKeyTile;
  }
};

}  // namespace

// With `store`, each work item also stores its queries' keys and values in
// the cache, after reading the cache (can_store_while_attending).
void Attention::attend(const float* qkv_rows, const BatchLayout& batch, float* att, bool store,
                       ThreadPool& pool) const {
  const int64_t hidden = heads * head_dim;
  const int64_t stride = 3 * hidden;
  const float scale = 1.0f / score_divisor;
  thread_local BatchKeyTiles batch_keys;
  BatchKeyTiles& keys = batch_keys;  // (the workers' own thread_local would be another)
  keys.build(qkv_rows, batch, heads, head_dim, pool);

  // Work items are (sequence, head, block of queries), head-major within a
  // sequence, in contiguous chunks claimed by the threads as they come: a
  // chunk reads one or a few heads' keys while they are in cache, and a
  // chunk of late queries (which see the most keys) does not hold up the
  // others.
  std::vector<int64_t> first_item(batch.seqs.size() + 1, 0);
  for (size_t s = 0; s < batch.seqs.size(); ++s)
    first_item[s + 1] = first_item[s] + heads * ((batch.seqs[s].rows + kQueryBlock - 1) / kQueryBlock);
  pool.parallel_for(first_item.back(), 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const auto s = static_cast<size_t>(std::upper_bound(first_item.begin(), first_item.end(), item) -
                                         first_item.begin() - 1);
      const BatchLayout::Seq& seq = batch.seqs[s];
      const int64_t blocks = (seq.rows + kQueryBlock - 1) / kQueryBlock;
      const int64_t h = (item - first_item[s]) / blocks, block = (item - first_item[s]) % blocks;
      // Queries i0 .. i1 - 1 of the sequence (positions start + i); each
      // sees keys [lo(pos), pos], and together they see [lo, hi].
      const int64_t i0 = block * kQueryBlock, i1 = std::min(seq.rows, i0 + kQueryBlock), m = i1 - i0;
      auto lowest = [&](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };
      const int64_t lo = lowest(seq.start + i0), hi = seq.start + i1 - 1, n = hi - lo + 1;
      const float* q = qkv_rows + (seq.first_row + i0) * stride + h * head_dim;
      float* o = att + (seq.first_row + i0) * hidden + h * head_dim;
      const KVCacheImpl& cache = *seq.cache;
      const float* new_keys = keys.head(static_cast<int64_t>(s), h, seq.rows, head_dim);
      scores.resize(static_cast<size_t>(m * n));
      float* sc = scores.data();

      // Scores against every key any of the queries sees: cached positions
      // (before seq.start) in runs of consecutive slots, then this batch's.
      const int64_t cached_end = std::min(seq.start, hi + 1);
      const int64_t p_new = std::max(lo, seq.start);
      auto cached_scores = [&](auto elem) {
        using E = decltype(elem);
        for (int64_t p = lo; p < cached_end;) {
          const int64_t c = cache.contiguous(layer, p, cached_end - p);
          kernels::attention_scores_tiled(q, stride, m, cache.key_tiles<E>(layer, h), cache.slot(layer, p), c,
                                          head_dim, scale, sc + (p - lo), n);
          p += c;
        }
      };
      with_element_type(cache, cached_scores);
      kernels::attention_scores_tiled(q, stride, m, new_keys, p_new - seq.start, hi - p_new + 1, head_dim, scale,
                                      sc + (p_new - lo), n);

      // Each query's softmax over its own keys; the keys it does not see
      // (later positions, or before its window) weigh 0.
      for (int64_t r = 0; r < m; ++r) {
        const int64_t pos = seq.start + i0 + r, first = lowest(pos) - lo, last = pos - lo;
        float* row = sc + r * n;
        std::fill(row, row + first, 0.0f);
        kernels::softmax(row + first, last - first + 1);
        std::fill(row + last + 1, row + n, 0.0f);
        std::fill(o + r * hidden, o + r * hidden + head_dim, 0.0f);
      }

      // Weighted values, read once for all the queries.
      auto cached_values = [&](auto elem) {
        using E = decltype(elem);
        for (int64_t p = lo; p < cached_end;) {
          const int64_t c = cache.contiguous(layer, p, cached_end - p);
          kernels::attention_values(sc + (p - lo), n, m, cache.values<E>(layer, h, p), head_dim, c, head_dim, o,
                                    hidden);
          p += c;
        }
      };
      with_element_type(cache, cached_values);
      const float* v = qkv_rows + (seq.first_row + p_new - seq.start) * stride + 2 * hidden + h * head_dim;
      kernels::attention_values(sc + (p_new - lo), n, m, v, stride, hi - p_new + 1, head_dim, o, hidden);

      if (store) store_rows(qkv_rows, seq, h, i0, i1);
    }
  });
}

void Attention::store_kv(const float* qkv_rows, const BatchLayout& batch, ThreadPool& pool) const {
  const auto n_seqs = static_cast<int64_t>(batch.seqs.size());
  // (An f16 cache converts every value: worth both threads when decoding
  // many sequences.)
  pool.parallel_for(n_seqs * heads, copy_grain(batch, n_seqs * heads), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const BatchLayout::Seq& seq = batch.seqs[static_cast<size_t>(item / heads)];
      store_rows(qkv_rows, seq, item % heads, 0, seq.rows);
    }
  });
}

void Attention::store_rows(const float* qkv_rows, const BatchLayout::Seq& seq, int64_t h, int64_t i0,
                           int64_t i1) const {
  const int64_t hidden = heads * head_dim;
  for (int64_t i = i0; i < i1; ++i) {
    const float* row = qkv_rows + (seq.first_row + i) * 3 * hidden;
    seq.cache->store(layer, h, seq.start + i, row + hidden + h * head_dim, row + 2 * hidden + h * head_dim);
  }
}

}  // namespace gptneo
