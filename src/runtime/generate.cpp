// The generation loops over SequenceDecoder: one request with one or several
// sampled sequences, and batches of requests, each step one batched forward
// pass over every unfinished sequence.
#include "gptneo/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "runtime/generate_internal.h"

namespace gptneo {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void check(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

}  // namespace

void GenerateOptions::validate() const {
  const SamplingOptions& s = sampling;
  check(max_new_tokens >= 0, fmt::format("max_new_tokens must be >= 0 (got {})", max_new_tokens));
  check(min_new_tokens >= 0, fmt::format("min_new_tokens must be >= 0 (got {})", min_new_tokens));
  check(std::isfinite(s.temperature) && s.temperature >= 0,
        fmt::format("temperature must be >= 0 (got {})", s.temperature));
  check(s.top_k >= 0, fmt::format("top_k must be >= 0 (got {})", s.top_k));
  check(s.top_p > 0 && s.top_p <= 1, fmt::format("top_p must be in (0, 1] (got {})", s.top_p));
  check(s.min_p >= 0 && s.min_p <= 1, fmt::format("min_p must be in [0, 1] (got {})", s.min_p));
  check(s.typical_p > 0 && s.typical_p <= 1, fmt::format("typical_p must be in (0, 1] (got {})", s.typical_p));
  check(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0,
        fmt::format("repetition_penalty must be > 0 (got {})", s.repetition_penalty));
  check(std::isfinite(s.presence_penalty), "presence_penalty must be a finite number");
  check(std::isfinite(s.frequency_penalty), "frequency_penalty must be a finite number");
  check(s.no_repeat_ngram_size >= 0, fmt::format("no_repeat_ngram_size must be >= 0 (got {})", s.no_repeat_ngram_size));
  for (const auto& [id, bias] : s.logit_bias) {
    check(id >= 0, fmt::format("logit bias for a negative token id {}", id));
    check(!std::isnan(bias) && bias != std::numeric_limits<float>::infinity(),
          fmt::format("logit bias {} for token {}: use a finite number or -inf", bias, id));
  }
  for (const auto& w : s.banned_words) check(!w.empty(), "a banned word is empty");
  for (const auto& t : stop) check(!t.empty(), "a stop sequence is empty");
  check(num_return_sequences >= 1, fmt::format("num_return_sequences must be >= 1 (got {})", num_return_sequences));
  check(top_logprobs >= 0 && top_logprobs <= 20, fmt::format("top_logprobs must be in 0..20 (got {})", top_logprobs));
  check(num_beams >= 1, fmt::format("num_beams must be >= 1 (got {})", num_beams));
  check(num_beams == 1 || num_return_sequences <= num_beams,
        fmt::format("num_return_sequences ({}) must be <= num_beams ({})", num_return_sequences, num_beams));
  check(std::isfinite(length_penalty), "length_penalty must be a finite number");
  check(draft_tokens >= 1 && draft_tokens <= 32, fmt::format("draft_tokens must be in 1..32 (got {})", draft_tokens));
}

std::vector<TokenId> fit_prompt(std::span<const TokenId> prompt, const GenerateOptions& options, int64_t max_positions) {
  const auto n = static_cast<int64_t>(prompt.size());
  if (n == 0) throw Error("the prompt is empty: give at least one token");
  if (options.truncation == Truncation::Left && n + options.max_new_tokens > max_positions) {
    // Keep room for the new tokens, but never less than half the context of prompt.
    const int64_t keep = std::min(n, max_positions - std::min(options.max_new_tokens, max_positions / 2));
    return {prompt.end() - keep, prompt.end()};
  }
  if (n > max_positions)
    throw Error(fmt::format("the prompt has {} tokens, more than the model's context of {} positions "
                            "(--truncate left keeps its end)",
                            n, max_positions));
  return {prompt.begin(), prompt.end()};
}

// ---- batches of sampled sequences ----------------------------------------------

namespace {

struct Sequence {
  int request = 0;
  int choice = 0;
  KVCache cache;
  SequenceDecoder decoder;
  TokenId next = 0;  // the token to run next
};

struct RequestState {
  const GenerateRequest* request = nullptr;
  std::vector<TokenId> prompt;  // after truncation
  GenerateResult result;
};

// Sends the event of one step; a false answer cancels the sequence.
void report(Sequence& s, const SequenceDecoder::Step& step, const StreamCallback& on_event) {
  if (!on_event) return;
  StreamEvent e{s.request, s.choice, step.token, step.text, step.finished, s.decoder.finish_reason()};
  if (!on_event(e) && !s.decoder.finished()) {
    const std::string rest = s.decoder.cancel();
    StreamEvent last{s.request, s.choice, std::nullopt, rest, true, FinishReason::Cancelled};
    on_event(last);
  }
}

void report_final(const Sequence& s, const StreamCallback& on_event) {
  if (!on_event) return;
  on_event(StreamEvent{s.request, s.choice, std::nullopt, {}, true, s.decoder.finish_reason()});
}

}  // namespace

std::vector<GenerateResult> generate_batch(Model& model, const Tokenizer* tokenizer,
                                           std::span<const GenerateRequest> requests, const StreamCallback& on_event) {
  const ModelConfig& cfg = model.config();
  std::vector<RequestState> states(requests.size());
  std::vector<Sequence> seqs;
  std::vector<size_t> beam_requests;
  // Set up every request: truncation, seed, one decoder per returned sequence.
  for (size_t r = 0; r < requests.size(); ++r) {
    const GenerateRequest& req = requests[r];
    req.options.validate();
    RequestState& st = states[r];
    st.request = &req;
    if (req.options.num_beams > 1) {
      beam_requests.push_back(r);
      continue;
    }
    st.prompt = fit_prompt(req.prompt, req.options, cfg.max_positions);
    st.result.prompt_tokens = static_cast<int64_t>(st.prompt.size());
    st.result.truncated_prompt_tokens = static_cast<int64_t>(req.prompt.size() - st.prompt.size());
    st.result.seed = req.options.seed ? *req.options.seed : random_seed();
    const DecodeContext ctx = decode_context(model, tokenizer, req.options);
    SequenceDecoder first(req.options, ctx, st.prompt, st.result.seed);
    const auto n_prompt = static_cast<int64_t>(st.prompt.size());
    const int64_t capacity =
        std::min(cfg.max_positions, std::max(n_prompt, n_prompt + req.options.max_new_tokens - 1));
    KVCache cache = first.finished() ? KVCache() : model.new_cache(capacity);
    for (int c = 1; c < req.options.num_return_sequences; ++c)
      seqs.push_back({static_cast<int>(r), c, KVCache(), first.fork(choice_seed(st.result.seed, c)), 0});
    seqs.insert(seqs.end() - (req.options.num_return_sequences - 1),
                Sequence{static_cast<int>(r), 0, std::move(cache), std::move(first), 0});
  }

  // Prefill: every request's prompt in one forward pass, one logits row each;
  // the other sequences of a request copy its cache and draw from the same row.
  auto t0 = Clock::now();
  std::vector<SequenceChunk> chunks;
  std::vector<size_t> owners;  // index in seqs of the first sequence of each chunk
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].choice == 0 && !seqs[i].decoder.finished()) {
      chunks.push_back({&seqs[i].cache, states[seqs[i].request].prompt, false});
      owners.push_back(i);
    }
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].decoder.finished()) report_final(seqs[i], on_event);
  if (!chunks.empty()) {
    const Logits logits = model.forward(chunks);
    const double prefill = seconds_since(t0);
    for (size_t k = 0; k < owners.size(); ++k) {
      const size_t first = owners[k];
      states[seqs[first].request].result.prefill_seconds = prefill;
      const std::span<const float> row(logits.row(static_cast<int64_t>(k)), static_cast<size_t>(logits.vocab));
      for (size_t i = first; i < seqs.size() && seqs[i].request == seqs[first].request; ++i) {
        if (i != first) seqs[i].cache = seqs[first].cache.copy();
        const auto step = seqs[i].decoder.step(row);
        seqs[i].next = step.token;
        report(seqs[i], step, on_event);
      }
    }
  }

  // Decode: one batched step over every unfinished sequence.
  t0 = Clock::now();
  std::vector<size_t> active;
  for (;;) {
    active.clear();
    chunks.clear();
    for (size_t i = 0; i < seqs.size(); ++i)
      if (!seqs[i].decoder.finished()) active.push_back(i);
    if (active.empty()) break;
    for (size_t i : active) chunks.push_back({&seqs[i].cache, {&seqs[i].next, 1}, false});
    const Logits logits = model.forward(chunks);
    for (size_t k = 0; k < active.size(); ++k) {
      Sequence& s = seqs[active[k]];
      const auto step =
          s.decoder.step({logits.row(static_cast<int64_t>(k)), static_cast<size_t>(logits.vocab)});
      s.next = step.token;
      report(s, step, on_event);
    }
  }
  const double decode = seconds_since(t0);

  std::vector<GenerateResult> results(requests.size());
  for (Sequence& s : seqs) {
    GenerateResult& r = states[s.request].result;
    r.choices.resize(static_cast<size_t>(requests[s.request].options.num_return_sequences));
    r.choices[s.choice] = s.decoder.choice();
    r.generated_tokens += static_cast<int64_t>(s.decoder.tokens().size());
    r.decode_seconds = decode;
  }
  for (size_t r = 0; r < requests.size(); ++r) results[r] = std::move(states[r].result);
  // Beam search keeps its own loop (its beams are re-ranked every step).
  for (size_t r : beam_requests) results[r] = beam_search_generate(model, tokenizer, requests[r].prompt, requests[r].options, [&](const StreamEvent& e) {
      if (!on_event) return true;
      StreamEvent f = e;
      f.request = static_cast<int>(r);
      return on_event(f);
    });
  for (GenerateResult& r : results) {
    r.tokens = r.choices.at(0).tokens;
    r.finish_reason = r.choices[0].finish_reason;
  }
  return results;
}

GenerateResult generate(Model& model, const Tokenizer* tokenizer, std::span<const TokenId> prompt,
                        const GenerateOptions& options, const StreamCallback& on_event, Model* draft) {
  options.validate();
  if (options.num_beams > 1) {
    if (draft) throw Error("speculative decoding (a draft model) and beam search cannot be combined");
    return beam_search_generate(model, tokenizer, prompt, options, on_event);
  }
  if (draft) return speculative_generate(model, *draft, tokenizer, prompt, options, on_event);
  GenerateRequest request{{prompt.begin(), prompt.end()}, options};
  return std::move(generate_batch(model, tokenizer, {&request, 1}, on_event).front());
}

GenerateResult generate(Model& model, std::span<const TokenId> prompt, const GenerateOptions& options,
                        const StreamCallback& on_event) {
  return generate(model, nullptr, prompt, options, on_event, nullptr);
}

}  // namespace gptneo
