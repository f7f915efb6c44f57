#include "eval/batch_scorer.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "kernels/kernels.h"

namespace gptneo::eval {

namespace {

// Where an output row of logits goes: which request, which of its scored
// tokens, and the token it must predict.
struct RowTarget {
  ScoreResult* result = nullptr;
  int64_t slot = 0;
  TokenId target = 0;
};

// One request's prediction at input position `pos`.
RowTarget target_at(const ScoreRequest& r, ScoreResult& result, int64_t pos) {
  return {&result, pos - r.first_scored_position(), r.tokens[static_cast<size_t>(pos + 1)]};
}

// log p(target) = (x[target] - max) - log(sum exp(x - max)), the log-softmax
// in float32 as the harness's model computes it, with the vectorised softmax
// kernel (a scalar double exp per vocabulary entry was a fifth of the run
// time). softmax(x)[argmax] = 1 / sum exp(x - max) never underflows, so
// log of it is the log-sum-exp; the subtraction is done in double.
void score_row(const float* logits, int64_t vocab, const RowTarget& t, std::vector<float>& scratch) {
  if (t.target < 0 || t.target >= vocab) throw Error(fmt::format("token id {} is outside the vocabulary", t.target));
  const float* best = std::max_element(logits, logits + vocab);  // the first index on ties, as torch.argmax
  scratch.assign(logits, logits + vocab);
  kernels::softmax(scratch.data(), vocab);
  const double log_sum = -std::log(static_cast<double>(scratch[static_cast<size_t>(best - logits)]));
  t.result->token_logprobs[static_cast<size_t>(t.slot)] = double(logits[t.target]) - double(*best) - log_sum;
  if (best - logits != t.target) t.result->greedy = false;
}

int64_t max_input_length(const RequestGroup& g) {
  int64_t m = 0;
  for (const auto& r : g) m = std::max(m, r.input_length());
  return m;
}

}  // namespace

int64_t shared_prefix_length(const RequestGroup& group) {
  if (group.size() < 2) return 0;
  int64_t p = group[0].input_length();
  for (const auto& r : group) {
    p = std::min(p, r.first_scored_position() + 1);
    const auto& a = group[0].tokens;
    int64_t i = 0;
    while (i < p && a[static_cast<size_t>(i)] == r.tokens[static_cast<size_t>(i)]) ++i;
    p = i;
  }
  return p;
}

BatchScorer::BatchScorer(Model& model, BatchLimits limits) : model_(model), limits_(limits) {
  const int64_t probe = std::min<int64_t>(64, model.config().max_positions);
  bytes_per_position_ = std::max<size_t>(1, model.new_cache(probe).bytes() / static_cast<size_t>(probe));
  limits_.groups = std::max<int64_t>(1, limits_.groups);
}

std::vector<std::vector<ScoreResult>> BatchScorer::score(const std::vector<RequestGroup>& groups,
                                                         const std::function<void(int64_t)>& progress) {
  std::vector<std::vector<ScoreResult>> out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].empty()) throw Error("an example has nothing to score");
    out[g].resize(groups[g].size());
    for (size_t i = 0; i < groups[g].size(); ++i) {
      const ScoreRequest& r = groups[g][i];
      if (r.scored < 1 || r.input_length() < r.scored || r.input_length() > model_.config().max_positions)
        throw Error("internal: a score request does not fit the model's context");
      out[g][i].token_logprobs.assign(static_cast<size_t>(r.scored), 0.0);
    }
  }
  // Passes take whole groups while they stay within the limits (a single
  // group always runs, whatever its size).
  size_t begin = 0;
  while (begin < groups.size()) {
    size_t end = begin;
    int64_t tokens = 0;
    size_t bytes = 0;
    while (end < groups.size() && static_cast<int64_t>(end - begin) < limits_.groups) {
      const RequestGroup& g = groups[end];
      const int64_t p = shared_prefix_length(g);
      int64_t t = p;
      size_t positions = 0;
      for (const auto& r : g) {
        t += r.input_length() - p;
        positions += static_cast<size_t>(p > 0 ? max_input_length(g) : r.input_length());
      }
      if (p > 0) positions += static_cast<size_t>(max_input_length(g));
      const size_t b = positions * bytes_per_position_;
      if (end > begin && (tokens + t > limits_.tokens || bytes + b > limits_.cache_bytes)) break;
      tokens += t, bytes += b, ++end;
    }
    run_pass(groups, begin, end, out);
    begin = end;
    if (progress) progress(static_cast<int64_t>(end));
  }
  for (auto& group : out)
    for (auto& r : group) {
      r.logprob = 0;
      for (const double lp : r.token_logprobs) r.logprob += lp;
    }
  return out;
}

void BatchScorer::run_pass(const std::vector<RequestGroup>& groups, size_t begin, size_t end,
                           std::vector<std::vector<ScoreResult>>& out) {
  const int64_t vocab = model_.config().vocab_size;
  const size_t count = end - begin;
  std::vector<int64_t> prefix(count);
  std::vector<KVCache> prefix_caches(count);

  // Phase 1: every shared prefix once, keeping the logits of its last
  // position, which predict the first token after it.
  {
    std::vector<SequenceChunk> chunks;
    std::vector<size_t> chunk_group;
    for (size_t i = 0; i < count; ++i) {
      const RequestGroup& g = groups[begin + i];
      prefix[i] = shared_prefix_length(g);
      if (prefix[i] == 0) continue;
      prefix_caches[i] = model_.new_cache(max_input_length(g));
      chunks.push_back({&prefix_caches[i], std::span(g[0].tokens).first(static_cast<size_t>(prefix[i]))});
      chunk_group.push_back(i);
      tokens_run_ += prefix[i];
    }
    if (!chunks.empty()) {
      model_.forward(chunks, [&](int64_t first, int64_t rows, const float* logits) {
        for (int64_t k = 0; k < rows; ++k) {
          const size_t i = chunk_group[static_cast<size_t>(first + k)];
          const RequestGroup& g = groups[begin + i];
          for (size_t r = 0; r < g.size(); ++r)
            if (g[r].first_scored_position() == prefix[i] - 1)
              score_row(logits + k * vocab, vocab, target_at(g[r], out[begin + i][r], prefix[i] - 1), scratch_);
        }
      });
    }
  }

  // Phase 2: each request's own tokens after the prefix, on a copy of the
  // prefix's cache, with logits only for the rows that predict scored tokens.
  std::vector<KVCache> caches;
  std::vector<SequenceChunk> chunks;
  std::vector<RowTarget> rows;
  for (size_t i = 0; i < count; ++i) {
    const RequestGroup& g = groups[begin + i];
    for (size_t r = 0; r < g.size(); ++r) {
      const int64_t length = g[r].input_length();
      if (length > prefix[i]) caches.push_back(prefix[i] > 0 ? prefix_caches[i].copy() : model_.new_cache(length));
    }
  }
  size_t next_cache = 0;
  for (size_t i = 0; i < count; ++i) {
    const RequestGroup& g = groups[begin + i];
    const int64_t p = prefix[i];
    for (size_t r = 0; r < g.size(); ++r) {
      const ScoreRequest& req = g[r];
      const int64_t length = req.input_length();
      if (length == p) continue;  // its one scored token was predicted by the prefix
      const int64_t skip = std::max<int64_t>(0, req.first_scored_position() - p);
      chunks.push_back({&caches[next_cache++],
                        std::span(req.tokens).subspan(static_cast<size_t>(p), static_cast<size_t>(length - p)), true,
                        skip});
      for (int64_t pos = p + skip; pos < length; ++pos) rows.push_back(target_at(req, out[begin + i][r], pos));
      tokens_run_ += length - p;
    }
  }
  if (chunks.empty()) return;
  model_.forward(chunks, [&](int64_t first, int64_t n, const float* logits) {
    for (int64_t k = 0; k < n; ++k) score_row(logits + k * vocab, vocab, rows[static_cast<size_t>(first + k)], scratch_);
  });
}

}  // namespace gptneo::eval
