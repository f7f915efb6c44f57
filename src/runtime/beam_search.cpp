// Beam search with the semantics of Hugging Face transformers' `_beam_search`
// (do_sample=False): the same candidates, the same float32 arithmetic of the
// scores (including its -1e9 markers), the same stopping rules. Written from
// the description in generate.h, not from their code.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "runtime/generate_internal.h"
#include "runtime/logits_processors.h"

namespace gptneo {

namespace {

// Hugging Face marks impossible entries by adding -1e9 to float32 scores.
constexpr float kMarker = -1.0e9f;

}  // namespace

struct BeamSearch::Hypothesis {
  std::vector<TokenId> tokens;
  float score = kMarker;
  bool finished = false;
  std::vector<TokenLogprob> logprobs;
};

struct BeamSearch::Candidate {
  float score = 0;  // running score + processed log-prob of the token
  int beam = 0;
  TokenId token = 0;
  bool hits = false;  // ends the sequence (EOS, stop sequence, length)
  TokenLogprob logprob;
};

BeamSearch::BeamSearch(const GenerateOptions& options, const DecodeContext& context, std::span<const TokenId> prompt)
    : options_(std::make_shared<const GenerateOptions>(options)),
      context_(context),
      prompt_len_(static_cast<int64_t>(prompt.size())) {
  options.validate();
  if (!options.stop.empty() && !context.tokenizer) throw Error("stop sequences need a tokenizer");
  max_new_ = options.max_new_tokens;
  if (context.max_positions > 0) max_new_ = std::min(max_new_, context.max_positions - prompt_len_ + 1);
  max_new_ = std::max<int64_t>(max_new_, 0);
  const int beams = options.num_beams;
  // All beams start as the prompt; only the first counts (the others' -1e9
  // keep the first step from choosing the same token num_beams times).
  LogitsProcessor first(options, context, prompt);
  for (int b = 0; b < beams; ++b) {
    running_.push_back(Beam{{}, b == 0 ? 0.0f : kMarker, b});
    processors_.push_back(first.clone());
    logprobs_.emplace_back();
    finished_.emplace_back();
  }
  done_ = max_new_ == 0;
}

BeamSearch::BeamSearch(BeamSearch&&) noexcept = default;
BeamSearch::~BeamSearch() = default;

bool BeamSearch::hits_stop(const Candidate& c) const {
  if (options_->stop.empty()) return false;
  std::vector<TokenId> tokens = running_[c.beam].tokens;
  tokens.push_back(c.token);
  const std::string text = context_.tokenizer->decode(tokens);
  return std::any_of(options_->stop.begin(), options_->stop.end(),
                     [&](const std::string& s) { return text.find(s) != std::string::npos; });
}

void BeamSearch::step(std::span<const float* const> logits) {
  if (done_) throw Error("BeamSearch::step after the search is done");
  const int B = options_->num_beams;
  if (static_cast<int>(logits.size()) != B)
    throw Error(fmt::format("beam search step: {} logits rows for {} beams", logits.size(), B));
  const int64_t V = context_.vocab;
  const size_t K = std::min<size_t>(2 * static_cast<size_t>(B), static_cast<size_t>(B * V));
  const float lp = options_->length_penalty;

  // Each beam's processed log-probabilities plus its score; its K best
  // continuations (the overall K best are among them).
  std::vector<Candidate> cands;
  std::vector<float> scores(static_cast<size_t>(V));
  std::vector<TokenId> idx(static_cast<size_t>(V));
  for (int b = 0; b < B; ++b) {
    const std::vector<double> raw = log_softmax({logits[b], static_cast<size_t>(V)});
    for (int64_t t = 0; t < V; ++t) scores[t] = static_cast<float>(raw[t]);
    processors_[b]->apply(scores);
    for (float& s : scores) s += running_[b].score;
    std::iota(idx.begin(), idx.end(), 0);
    auto better = [&](TokenId x, TokenId y) { return scores[x] > scores[y] || (scores[x] == scores[y] && x < y); };
    const size_t keep = std::min(K, static_cast<size_t>(V));
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(), better);
    std::vector<std::pair<TokenId, float>> top;
    if (options_->top_logprobs > 0) top = top_entries(std::span<const double>(raw), options_->top_logprobs);
    for (size_t i = 0; i < keep; ++i) {
      const TokenId t = idx[i];
      cands.push_back(Candidate{scores[t], b, t, false, TokenLogprob{t, static_cast<float>(raw[t]), top}});
    }
  }
  // The K best of all, by score, then beam-major position (a stable top-k).
  std::stable_sort(cands.begin(), cands.end(), [](const Candidate& x, const Candidate& y) { return x.score > y.score; });
  cands.resize(K);
  bool all_hit = true;
  for (Candidate& c : cands) {
    c.hits = (options_->stop_at_eos && c.token == context_.eos) || step_ + 1 >= max_new_ || hits_stop(c);
    all_hit = all_hit && c.hits;
  }

  // Finished hypotheses: among the best B candidates, those that end here,
  // scored by sum / generated_length^length_penalty (the new token counted).
  const bool all_full = std::all_of(finished_.begin(), finished_.end(), [](const Hypothesis& h) { return h.finished; });
  const auto denominator = static_cast<float>(std::pow(static_cast<double>(step_ + 1), static_cast<double>(lp)));
  auto extend = [&](const Candidate& c) {
    Hypothesis h;
    h.tokens = running_[c.beam].tokens;
    h.tokens.push_back(c.token);
    if (options_->logprobs || options_->top_logprobs > 0) {
      h.logprobs = logprobs_[c.beam];
      h.logprobs.push_back(c.logprob);
    }
    return h;
  };
  struct Entry {
    float score;
    int from;  // < B: an existing finished slot; else candidate from - B
  };
  std::vector<Entry> merged;
  for (int i = 0; i < B; ++i) merged.push_back({finished_[i].score, i});
  for (size_t k = 0; k < K; ++k) {
    float s = cands[k].score / denominator;
    if (all_full && options_->early_stopping == EarlyStopping::Always) s += kMarker;
    if (!improvement_possible_) s += kMarker;
    if (!(cands[k].hits && k < static_cast<size_t>(B))) s += kMarker;
    merged.push_back({s, B + static_cast<int>(k)});
  }
  std::stable_sort(merged.begin(), merged.end(), [](const Entry& x, const Entry& y) { return x.score > y.score; });
  std::vector<Hypothesis> finished;
  for (int i = 0; i < B; ++i) {
    const Entry& e = merged[i];
    if (e.from < B) {
      finished.push_back(finished_[e.from]);
    } else {
      const size_t k = static_cast<size_t>(e.from - B);
      Hypothesis h = extend(cands[k]);
      h.score = e.score;
      h.finished = cands[k].hits && k < static_cast<size_t>(B);
      finished.push_back(std::move(h));
    }
  }

  // Running beams: the B best candidates, those that ended pushed down by -1e9.
  std::vector<std::pair<float, size_t>> order;
  for (size_t k = 0; k < K; ++k) order.emplace_back(cands[k].score + (cands[k].hits ? kMarker : 0.0f), k);
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  std::vector<Beam> running;
  std::vector<std::unique_ptr<LogitsProcessor>> processors;
  std::vector<std::vector<TokenLogprob>> logprobs;
  for (int i = 0; i < B; ++i) {
    const Candidate& c = cands[order[i].second];
    Hypothesis h = extend(c);
    running.push_back(Beam{std::move(h.tokens), order[i].first, c.beam});
    processors.push_back(processors_[c.beam]->clone());
    processors.back()->push(c.token);
    logprobs.push_back(std::move(h.logprobs));
  }
  running_ = std::move(running);
  processors_ = std::move(processors);
  logprobs_ = std::move(logprobs);
  finished_ = std::move(finished);
  ++step_;

  // Can a running beam still beat the worst finished hypothesis? The best
  // running score over the current length ("never" with a positive length
  // penalty: over the longest possible length). Once no, never again.
  const int64_t best_len =
      options_->early_stopping == EarlyStopping::Never && lp > 0.0f ? max_new_ : step_;
  const float best_possible =
      running_[0].score / static_cast<float>(std::pow(static_cast<double>(best_len), static_cast<double>(lp)));
  float worst = finished_[0].score;
  for (const Hypothesis& h : finished_) worst = std::min(worst, h.score);
  bool can_improve = false;
  for (const Hypothesis& h : finished_) can_improve = can_improve || best_possible > (h.finished ? worst : kMarker);
  improvement_possible_ = improvement_possible_ && can_improve;
  const bool all_finished = std::all_of(finished_.begin(), finished_.end(), [](const Hypothesis& h) { return h.finished; });
  done_ = !(improvement_possible_ && !(all_finished && options_->early_stopping == EarlyStopping::Always) && !all_hit);
}

std::vector<Choice> BeamSearch::results() const {
  std::vector<Choice> out;
  for (int i = 0; i < options_->num_return_sequences && i < static_cast<int>(finished_.size()); ++i) {
    const Hypothesis& h = finished_[i];
    Choice c;
    c.tokens = h.tokens;
    c.logprobs = h.logprobs;
    c.score = h.score;
    c.finish_reason = FinishReason::Length;
    std::span<const TokenId> text_ids = c.tokens;
    if (options_->stop_at_eos && !c.tokens.empty() && c.tokens.back() == context_.eos) {
      c.finish_reason = FinishReason::Eos;
      text_ids = text_ids.first(text_ids.size() - 1);
    }
    if (context_.tokenizer) {
      c.text = context_.tokenizer->decode(text_ids);
      size_t cut = std::string::npos;
      for (const std::string& s : options_->stop) cut = std::min(cut, c.text.find(s));
      if (cut != std::string::npos) {
        c.text.resize(cut);
        c.finish_reason = FinishReason::Stop;
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// ---- the loop over a model --------------------------------------------------------

GenerateResult beam_search_generate(Model& model, const Tokenizer* tokenizer, std::span<const TokenId> prompt_in,
                                    const GenerateOptions& options, const StreamCallback& on_event) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& cfg = model.config();
  const std::vector<TokenId> prompt = fit_prompt(prompt_in, options, cfg.max_positions);
  GenerateResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.truncated_prompt_tokens = static_cast<int64_t>(prompt_in.size() - prompt.size());
  result.seed = options.seed.value_or(0);  // beam search draws nothing
  BeamSearch search(options, decode_context(model, tokenizer, options), prompt);
  const int B = options.num_beams;
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t capacity = std::min(cfg.max_positions, std::max(n_prompt, n_prompt + options.max_new_tokens - 1));

  if (!search.done()) {
    // The prompt runs once; every beam starts from a copy of its cache.
    auto t0 = Clock::now();
    std::vector<KVCache> caches;
    caches.push_back(model.new_cache(capacity));
    SequenceChunk chunk{&caches[0], prompt, false};
    const Logits first = model.forward({&chunk, 1});
    result.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    for (int b = 1; b < B; ++b) caches.push_back(caches[0].copy());
    std::vector<const float*> rows(static_cast<size_t>(B), first.row(0));
    search.step(rows);
    std::vector<TokenId> next(static_cast<size_t>(B));
    std::vector<SequenceChunk> chunks(static_cast<size_t>(B));
    while (!search.done()) {
      // Each beam continues from its parent's cache: the last beam to use a
      // parent takes it over, the others copy it.
      const auto& running = search.running();
      std::vector<int> uses(static_cast<size_t>(B), 0);
      for (const auto& beam : running) ++uses[beam.parent];
      std::vector<KVCache> reordered(static_cast<size_t>(B));
      for (int i = 0; i < B; ++i) {
        const int p = running[i].parent;
        reordered[i] = --uses[p] == 0 ? std::move(caches[p]) : caches[p].copy();
      }
      caches = std::move(reordered);
      for (int i = 0; i < B; ++i) {
        next[i] = running[i].tokens.back();
        chunks[i] = SequenceChunk{&caches[i], {&next[i], 1}, false};
      }
      const Logits logits = model.forward(chunks);
      for (int i = 0; i < B; ++i) rows[i] = logits.row(i);
      search.step(rows);
    }
    result.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  result.choices = search.results();
  if (result.choices.empty()) result.choices.emplace_back();
  for (const Choice& c : result.choices) result.generated_tokens += static_cast<int64_t>(c.tokens.size());
  result.tokens = result.choices[0].tokens;
  result.finish_reason = result.choices[0].finish_reason;
  if (on_event)
    for (size_t i = 0; i < result.choices.size(); ++i)
      on_event(StreamEvent{0, static_cast<int>(i), std::nullopt, result.choices[i].text, true,
                           result.choices[i].finish_reason});
  return result;
}

}  // namespace gptneo
