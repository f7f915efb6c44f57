// SequenceDecoder: the decoding state of one sequence, stepped one token at
// a time from logits rows computed elsewhere.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "models/architecture.h"
#include "runtime/logits_processors.h"

namespace gptneo {

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::Length: return "length";
    case FinishReason::Stop: return "stop";
    case FinishReason::Eos: return "eos";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "length";
}

DecodeContext decode_context(const Model& model, const Tokenizer* tokenizer, const GenerateOptions& options) {
  const ModelConfig& cfg = model.config();
  DecodeContext c;
  c.tokenizer = tokenizer;
  c.eos = cfg.eos_token_id;
  if (c.eos < 0 && tokenizer) c.eos = tokenizer->eos_id();
  // Padding ids past the tokenizer's vocabulary (GPT-J) are never generated.
  c.vocab = tokenizer ? std::min<int64_t>(tokenizer->vocab_size(), cfg.vocab_size) : generation_vocab_size(cfg);
  if (options.sample_vocab > 0) c.vocab = std::min(c.vocab, options.sample_vocab);
  c.max_positions = cfg.max_positions;
  return c;
}

SequenceDecoder::SequenceDecoder(const GenerateOptions& options, const DecodeContext& context,
                                 std::span<const TokenId> prompt, uint64_t seed)
    : options_(std::make_shared<const GenerateOptions>(options)),
      context_(context),
      want_logprobs_(options.logprobs || options.top_logprobs > 0),
      processor_(std::make_unique<LogitsProcessor>(options, context, prompt)),
      rng_(seed) {
  if (context.vocab <= 0) throw Error("the model has an empty vocabulary");
  if (!options.stop.empty() && !context.tokenizer) throw Error("stop sequences need a tokenizer");
  if (context.tokenizer) streamer_ = std::make_unique<TextStreamer>(*context.tokenizer, options.stop);
  // The last generated token is never run through the model, so a context of
  // C positions holds a prompt of P tokens and C - P + 1 new ones.
  limit_ = options.max_new_tokens;
  if (context.max_positions > 0)
    limit_ = std::min<int64_t>(limit_, context.max_positions - static_cast<int64_t>(prompt.size()) + 1);
  if (limit_ <= 0) {
    limit_ = 0;
    finished_ = true;
  }
}

SequenceDecoder::SequenceDecoder(SequenceDecoder&&) noexcept = default;
SequenceDecoder& SequenceDecoder::operator=(SequenceDecoder&&) noexcept = default;
SequenceDecoder::~SequenceDecoder() = default;

SequenceDecoder SequenceDecoder::fork(uint64_t seed, bool with_logprobs) const {
  SequenceDecoder d;
  d.options_ = options_;
  d.context_ = context_;
  d.want_logprobs_ = want_logprobs_ && with_logprobs;
  d.processor_ = processor_->clone();
  if (streamer_) d.streamer_ = std::make_unique<TextStreamer>(*streamer_);
  d.rng_ = Rng(seed);
  d.tokens_ = tokens_;
  if (d.want_logprobs_) d.logprobs_ = logprobs_;
  d.limit_ = limit_;
  d.finished_ = finished_;
  d.finish_reason_ = finish_reason_;
  return d;
}

Distribution SequenceDecoder::distribution(std::span<const float> logits) const {
  if (static_cast<int64_t>(logits.size()) < context_.vocab)
    throw Error(fmt::format("a logits row of {} values for a vocabulary of {}", logits.size(), context_.vocab));
  std::vector<float> scores(logits.begin(), logits.begin() + context_.vocab);
  processor_->apply(scores);
  const SamplingOptions& s = options_->sampling;
  return s.is_greedy() ? greedy_distribution(scores) : sampling_distribution(scores, s);
}

SequenceDecoder::Step SequenceDecoder::step(std::span<const float> logits) {
  if (finished_) throw Error("SequenceDecoder::step on a finished sequence");
  const Distribution d = distribution(logits);
  return accept(d.sample(rng_), logits);
}

SequenceDecoder::Step SequenceDecoder::accept(TokenId token, std::span<const float> logits) {
  if (finished_) throw Error("SequenceDecoder::accept on a finished sequence");
  if (token < 0 || token >= context_.vocab) throw Error(fmt::format("token {} is outside the vocabulary", token));
  tokens_.push_back(token);
  if (want_logprobs_) {
    const std::vector<double> lp = log_softmax(logits.subspan(0, static_cast<size_t>(context_.vocab)));
    TokenLogprob t{token, static_cast<float>(lp[token]), {}};
    if (options_->top_logprobs > 0) t.top = top_entries(std::span<const double>(lp), options_->top_logprobs);
    logprobs_.push_back(std::move(t));
  }
  processor_->push(token);
  Step st{token, {}, false};
  if (options_->stop_at_eos && token == context_.eos) {
    finish(FinishReason::Eos, st.text);
  } else if (streamer_) {
    st.text = streamer_->push(token);
    if (streamer_->stopped()) finish(FinishReason::Stop, st.text);
  }
  if (!finished_ && static_cast<int64_t>(tokens_.size()) >= limit_) finish(FinishReason::Length, st.text);
  st.finished = finished_;
  return st;
}

std::string SequenceDecoder::cancel() {
  std::string text;
  if (!finished_) finish(FinishReason::Cancelled, text);
  return text;
}

void SequenceDecoder::finish(FinishReason reason, std::string& text) {
  if (streamer_) text += streamer_->flush();
  finished_ = true;
  finish_reason_ = reason;
}

Choice SequenceDecoder::choice() const {
  Choice c;
  c.tokens = tokens_;
  if (streamer_) c.text = streamer_->text();
  c.finish_reason = finish_reason_;
  c.logprobs = logprobs_;
  return c;
}

}  // namespace gptneo
