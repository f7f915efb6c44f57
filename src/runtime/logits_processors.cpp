#include "runtime/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// ---- banned words -------------------------------------------------------------

WordBans::WordBans(const std::vector<std::string>& words, const Tokenizer& tokenizer, int64_t vocab) {
  const int64_t n = std::min<int64_t>(vocab, tokenizer.vocab_size());
  for (const std::string& w : words) {
    if (w.empty()) throw Error("a banned word is empty");
    Word word{w, std::vector<std::vector<TokenId>>(w.size())};
    longest_ = std::max(longest_, w.size());
    for (TokenId t = 0; t < n; ++t) {
      const std::string& b = tokenizer.token_bytes(t);
      // A token can complete the word in two ways: the word starts in the
      // text before it (k bytes of it) and the token begins with the rest,
      // or the whole word lies inside the token.
      for (size_t k = 0; k < w.size(); ++k)
        if (starts_with(b, std::string_view(w).substr(k))) word.completing[k].push_back(t);
      for (size_t at = b.find(w, 1); at != std::string::npos; at = b.find(w, at + 1))
        if (!is_word_byte(b[at - 1])) {
          always_.push_back(t);
          break;
        }
    }
    words_.push_back(std::move(word));
  }
}

void WordBans::apply(std::string_view tail, bool whole, std::span<float> scores) const {
  for (TokenId t : always_) scores[t] = kNegInf;
  for (const Word& w : words_) {
    for (size_t k = 0; k < w.bytes.size(); ++k) {
      if (tail.size() < k || tail.compare(tail.size() - k, k, w.bytes, 0, k) != 0) continue;
      // The word must start a word: at the start of the text or after a
      // byte that is not a letter or digit.
      const bool at_start = tail.size() == k;
      if (at_start ? !whole : is_word_byte(tail[tail.size() - k - 1])) continue;
      for (TokenId t : w.completing[k]) scores[t] = kNegInf;
    }
  }
}

// ---- processors ---------------------------------------------------------------

LogitsProcessor::LogitsProcessor(const GenerateOptions& options, const DecodeContext& context,
                                 std::span<const TokenId> prompt)
    : sampling_(options.sampling),
      min_new_tokens_(options.min_new_tokens),
      eos_(context.eos),
      tokenizer_(context.tokenizer),
      history_(prompt.begin(), prompt.end()),
      prompt_len_(prompt.size()) {
  for (const auto& [id, bias] : sampling_.logit_bias)
    if (id < 0 || id >= context.vocab)
      throw Error(fmt::format("logit bias for token {}: not an id the model can generate (0..{})", id,
                              context.vocab - 1));
  if (sampling_.repetition_penalty != 1.0f) seen_.insert(prompt.begin(), prompt.end());
  if (!sampling_.banned_words.empty()) {
    if (!tokenizer_) throw Error("banned words need a tokenizer");
    bans_ = std::make_shared<WordBans>(sampling_.banned_words, *tokenizer_, context.vocab);
    // The prompt's last bytes decide whether the output starts a word.
    for (TokenId id : prompt) append_text(id);
  }
}

void LogitsProcessor::append_text(TokenId id) {
  if (!bans_ || !tokenizer_) return;
  tail_ += tokenizer_->token_bytes(id);
  const size_t keep = bans_->longest() + 1;
  if (tail_.size() > 2 * keep + 64) {
    tail_.erase(0, tail_.size() - keep);
    tail_whole_ = false;
  }
}

void LogitsProcessor::push(TokenId id) {
  history_.push_back(id);
  if (sampling_.repetition_penalty != 1.0f) seen_.insert(id);
  if (sampling_.presence_penalty != 0.0f || sampling_.frequency_penalty != 0.0f) ++generated_count_[id];
  append_text(id);
}

void LogitsProcessor::apply(std::span<float> scores) const {
  const auto vocab = static_cast<TokenId>(scores.size());
  // 1. logit bias (OpenAI): additive.
  for (const auto& [id, bias] : sampling_.logit_bias)
    if (id < vocab) scores[id] += bias;
  // 2. repetition penalty (Hugging Face): every token of prompt + output once.
  if (const float p = sampling_.repetition_penalty; p != 1.0f)
    for (TokenId id : seen_)
      if (id < vocab) scores[id] = scores[id] < 0 ? scores[id] * p : scores[id] / p;
  // 3. presence and frequency penalties (OpenAI): tokens of the output only.
  if (sampling_.presence_penalty != 0.0f || sampling_.frequency_penalty != 0.0f)
    for (const auto& [id, count] : generated_count_)
      if (id < vocab)
        scores[id] -= static_cast<float>(count) * sampling_.frequency_penalty + sampling_.presence_penalty;
  // 4. no repeated n-gram (Hugging Face): a token that would complete an
  // n-gram already present in prompt + output is banned.
  if (const auto n = static_cast<size_t>(std::max(sampling_.no_repeat_ngram_size, 0)); n > 0 && history_.size() + 1 >= n) {
    const size_t len = history_.size();
    const std::span<const TokenId> last(history_.data() + len - (n - 1), n - 1);
    for (size_t i = 0; i + n <= len; ++i)
      if (std::equal(last.begin(), last.end(), history_.begin() + static_cast<std::ptrdiff_t>(i)))
        if (const TokenId t = history_[i + n - 1]; t < vocab) scores[t] = kNegInf;
  }
  // 5. banned words.
  if (bans_) bans_->apply(tail_, tail_whole_, scores);
  // 6. no end-of-text before min_new_tokens.
  if (eos_ >= 0 && eos_ < vocab && generated() < min_new_tokens_) scores[eos_] = kNegInf;
}

// ---- warpers and distributions ------------------------------------------------

namespace {

struct Cand {
  TokenId id;
  float score;
};

bool better(const Cand& a, const Cand& b) { return a.score > b.score || (a.score == b.score && a.id < b.id); }

// Softmax of the candidates' scores, in double.
std::vector<double> softmax(const std::vector<Cand>& c) {
  std::vector<double> p(c.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (const Cand& x : c) mx = std::max(mx, static_cast<double>(x.score));
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i) sum += p[i] = std::exp(static_cast<double>(c[i].score) - mx);
  for (double& v : p) v /= sum;
  return p;
}

// Keeps the first n candidates.
void keep_first(std::vector<Cand>& c, size_t n) { c.resize(std::max<size_t>(1, std::min(n, c.size()))); }

void top_p_filter(std::vector<Cand>& c, double top_p) {
  // Sorted best first: a token stays while the mass of the tokens before it
  // is below top_p (Hugging Face: cumulative mass from the least likely end
  // above 1 - top_p).
  const std::vector<double> p = softmax(c);
  double before = 0;
  size_t n = 0;
  while (n < c.size() && before < top_p) before += p[n++];
  keep_first(c, n);
}

void min_p_filter(std::vector<Cand>& c, double min_p) {
  const std::vector<double> p = softmax(c);
  const double threshold = min_p * p[0];
  size_t n = 0;
  while (n < c.size() && p[n] >= threshold) ++n;
  keep_first(c, n);
}

void typical_filter(std::vector<Cand>& c, double mass) {
  // Hugging Face's TypicalLogitsWarper: order tokens by how far their
  // surprisal is from the entropy, keep them until `mass` is covered.
  const std::vector<double> p = softmax(c);
  double entropy = 0;
  for (double v : p)
    if (v > 0) entropy -= v * std::log(v);
  std::vector<double> shift(c.size());
  for (size_t i = 0; i < c.size(); ++i) shift[i] = p[i] > 0 ? std::abs(-std::log(p[i]) - entropy) : std::numeric_limits<double>::infinity();
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return shift[a] < shift[b]; });
  double cum = 0;
  size_t last = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    cum += p[order[i]];
    if (cum < mass) last = i + 1;
  }
  last = std::min(last, order.size() - 1);
  const double limit = shift[order[last]];
  std::vector<Cand> kept;
  for (size_t i = 0; i < c.size(); ++i)
    if (shift[i] <= limit || i == order[0]) kept.push_back(c[i]);
  c = std::move(kept);
}

}  // namespace

Distribution sampling_distribution(std::span<float> scores, const SamplingOptions& o) {
  // 7. temperature.
  if (o.temperature != 1.0f)
    for (float& s : scores) s /= o.temperature;
  std::vector<Cand> c;
  c.reserve(scores.size());
  for (size_t i = 0; i < scores.size(); ++i)
    if (scores[i] > kNegInf) c.push_back({static_cast<TokenId>(i), scores[i]});
  if (c.empty()) throw Error("every token is banned: nothing left to generate (check --logit-bias and --ban)");
  // 8. top-k, ties at the k-th score kept (as Hugging Face).
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < c.size()) {
    std::nth_element(c.begin(), c.begin() + (o.top_k - 1), c.end(), better);
    const float kth = c[static_cast<size_t>(o.top_k - 1)].score;
    std::erase_if(c, [&](const Cand& x) { return x.score < kth; });
  }
  const bool sorted = o.top_p < 1.0f || o.min_p > 0.0f || o.typical_p < 1.0f;
  if (sorted) std::sort(c.begin(), c.end(), better);
  if (o.top_p < 1.0f) top_p_filter(c, o.top_p);   // 9
  if (o.min_p > 0.0f) min_p_filter(c, o.min_p);   // 10
  if (o.typical_p < 1.0f) typical_filter(c, o.typical_p);  // 11
  Distribution d;
  d.probs = softmax(c);
  d.ids.reserve(c.size());
  for (const Cand& x : c) d.ids.push_back(x.id);
  return d;
}

Distribution greedy_distribution(std::span<const float> scores) {
  const auto best = std::max_element(scores.begin(), scores.end());
  if (best == scores.end() || *best == kNegInf)
    throw Error("every token is banned: nothing left to generate (check --logit-bias and --ban)");
  return Distribution{{static_cast<TokenId>(best - scores.begin())}, {1.0}};
}

std::vector<double> log_softmax(std::span<const float> logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

namespace {
template <typename T>
std::vector<std::pair<TokenId, float>> top_entries_impl(std::span<const T> values, int k) {
  const size_t n = std::min(values.size(), static_cast<size_t>(std::max(k, 0)));
  std::vector<TokenId> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  auto cmp = [&](TokenId a, TokenId b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(), cmp);
  std::vector<std::pair<TokenId, float>> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(idx[i], static_cast<float>(values[idx[i]]));
  return out;
}
}  // namespace

std::vector<std::pair<TokenId, float>> top_entries(std::span<const float> values, int k) {
  return top_entries_impl(values, k);
}
std::vector<std::pair<TokenId, float>> top_entries(std::span<const double> values, int k) {
  return top_entries_impl(values, k);
}

}  // namespace gptneo
