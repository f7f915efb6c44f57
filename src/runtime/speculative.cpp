// Speculative decoding: a small draft model proposes a few tokens, the target
// model checks them all in one forward pass, and the standard acceptance rule
// (speculative_accept) keeps the output distributed exactly as the target's.
// With greedy decoding both distributions are one-hot, so a drafted token is
// kept exactly when it is the target's argmax: the output equals plain greedy
// decoding of the target.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "runtime/generate_internal.h"

namespace gptneo {

namespace {

using Clock = std::chrono::steady_clock;

// The draft's random stream: unrelated to the target's (choice_seed's index 0).
constexpr int kDraftStream = 1 << 20;

std::span<const float> row_of(const Logits& l, int64_t r) { return {l.row(r), static_cast<size_t>(l.vocab)}; }

}  // namespace

GenerateResult speculative_generate(Model& target, Model& draft, const Tokenizer* tokenizer,
                                    std::span<const TokenId> prompt_in, const GenerateOptions& options,
                                    const StreamCallback& on_event) {
  if (options.num_return_sequences != 1)
    throw Error("speculative decoding (a draft model) returns one sequence: drop --num-return-sequences");
  const ModelConfig& cfg = target.config();
  const std::vector<TokenId> prompt = fit_prompt(prompt_in, options, cfg.max_positions);
  GenerateResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.truncated_prompt_tokens = static_cast<int64_t>(prompt_in.size() - prompt.size());
  result.seed = options.seed ? *options.seed : random_seed();
  const DecodeContext ctx = decode_context(target, tokenizer, options);
  if (draft.config().vocab_size < ctx.vocab)
    throw Error(fmt::format("the draft model's vocabulary ({}) is smaller than the target's ({}): they must share "
                            "the tokenizer",
                            draft.config().vocab_size, ctx.vocab));
  SequenceDecoder dec(options, ctx, prompt, result.seed);
  Rng draft_rng(choice_seed(result.seed, kDraftStream));
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t capacity = std::min(cfg.max_positions, std::max(n_prompt, n_prompt + options.max_new_tokens - 1));
  if (!dec.finished() && draft.config().max_positions < capacity)
    throw Error(fmt::format("the draft model's context ({}) is shorter than this generation needs ({})",
                            draft.config().max_positions, capacity));

  auto emit = [&](const SequenceDecoder::Step& st) {
    if (on_event && !on_event(StreamEvent{0, 0, st.token, st.text, st.finished, dec.finish_reason()}) &&
        !dec.finished()) {
      const std::string rest = dec.cancel();
      on_event(StreamEvent{0, 0, std::nullopt, rest, true, FinishReason::Cancelled});
    }
  };

  if (dec.finished()) {
    if (on_event) on_event(StreamEvent{0, 0, std::nullopt, {}, true, dec.finish_reason()});
  } else {
    KVCache tcache = target.new_cache(capacity);
    KVCache dcache = draft.new_cache(capacity);
    auto t0 = Clock::now();
    SequenceChunk chunk{&tcache, prompt, false};
    const Logits first = target.forward({&chunk, 1});
    result.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    std::vector<TokenId> seq = prompt;  // prompt + generated; the cache holds all but the last
    const auto st0 = dec.step(row_of(first, 0));
    seq.push_back(st0.token);
    emit(st0);

    std::vector<TokenId> drafted;
    std::vector<Distribution> q;
    while (!dec.finished()) {
      const int64_t held = static_cast<int64_t>(seq.size()) - 1;
      // Draft k tokens, leaving room for the target's extra token.
      const int64_t k = std::min<int64_t>({options.draft_tokens, dec.remaining() - 1, capacity - held - 1});
      if (k <= 0) {
        SequenceChunk c{&tcache, {&seq.back(), 1}, false};
        const Logits l = target.forward({&c, 1});
        ++result.target_passes;
        const auto st = dec.step(row_of(l, 0));
        seq.push_back(st.token);
        emit(st);
        continue;
      }
      // The draft catches up on what it has not seen (the whole prompt at
      // first, the target's own token after a rejection), then proposes
      // tokens one at a time from a copy of the decoding state.
      SequenceDecoder shadow = dec.fork(0, false);
      shadow.rng() = draft_rng;
      drafted.clear();
      q.clear();
      SequenceChunk dc{&dcache, std::span<const TokenId>(seq).subspan(static_cast<size_t>(dcache.length())), false};
      Logits dl = draft.forward({&dc, 1});
      for (int64_t i = 0; i < k; ++i) {
        q.push_back(shadow.distribution(row_of(dl, 0)));
        const TokenId x = q.back().sample(shadow.rng());
        drafted.push_back(x);
        shadow.accept(x, row_of(dl, 0));
        if (shadow.finished() || i + 1 == k) break;
        dc.tokens = {&drafted.back(), 1};
        dl = draft.forward({&dc, 1});
      }
      draft_rng = shadow.rng();
      // The target scores its last token and every drafted one at once.
      std::vector<TokenId> verify = {seq.back()};
      verify.insert(verify.end(), drafted.begin(), drafted.end());
      SequenceChunk tc{&tcache, verify, true};
      const Logits tl = target.forward({&tc, 1});
      ++result.target_passes;
      result.draft_proposed += static_cast<int64_t>(drafted.size());
      size_t accepted = 0;
      bool all_accepted = true;
      for (size_t i = 0; i < drafted.size() && !dec.finished(); ++i) {
        const auto row = row_of(tl, static_cast<int64_t>(i));
        const SpeculativeVerdict v = speculative_accept(dec.distribution(row), q[i], drafted[i], dec.rng());
        const auto st = dec.accept(v.token, row);
        seq.push_back(st.token);
        emit(st);
        if (!v.accepted) {
          all_accepted = false;
          break;
        }
        ++accepted;
      }
      result.draft_accepted += static_cast<int64_t>(accepted);
      // Every drafted token kept: the target's last row gives one more for free.
      if (all_accepted && !dec.finished()) {
        const auto st = dec.step(row_of(tl, static_cast<int64_t>(drafted.size())));
        seq.push_back(st.token);
        emit(st);
      }
      // Forget what was rejected: the target keeps all but the newest token,
      // the draft what it saw that was kept.
      tcache.truncate(static_cast<int64_t>(seq.size()) - 1);
      dcache.truncate(std::min<int64_t>(dcache.length(), held + 1 + static_cast<int64_t>(accepted)));
    }
    result.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  result.choices.push_back(dec.choice());
  result.tokens = result.choices[0].tokens;
  result.finish_reason = result.choices[0].finish_reason;
  result.generated_tokens = static_cast<int64_t>(result.tokens.size());
  return result;
}

}  // namespace gptneo
