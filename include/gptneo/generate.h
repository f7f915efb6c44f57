// Text generation: options with the meanings of Hugging Face `generate()` and
// the OpenAI API, the per-sequence decoding state, and the loops built on it
// (one prompt, several returned sequences, batches of prompts, beam search,
// speculative decoding), plus the chat template.
//
//   auto model = gptneo::Model::load("models/neo-mini");
//   auto tok = gptneo::Tokenizer::load("models/neo-mini");
//   gptneo::GenerateOptions o;
//   o.max_new_tokens = 40;
//   o.sampling.temperature = 0.7f;
//   o.stop = {"\n\n"};
//   o.seed = 1;
//   gptneo::GenerateResult r = gptneo::generate(*model, &tok, tok.encode("Once upon a time"), o);
//   std::string text = r.choices[0].text;
//
// Whoever runs the model (generate(), generate_batch(), a server's continuous
// batching loop) drives the same SequenceDecoder: give it the logits row of
// its sequence, get back the chosen token and the text that is safe to show.
//
// Order of the logits filters (docs/generation.md explains each):
//   processors (always, also for greedy and beam search):
//     1 logit_bias   2 repetition_penalty   3 presence/frequency_penalty
//     4 no_repeat_ngram_size   5 banned_words   6 min_new_tokens (bans EOS)
//   warpers (sampling only):
//     7 temperature   8 top_k   9 top_p   10 min_p   11 typical_p
// then one token is drawn from the softmax of what is left. Greedy decoding
// takes the argmax after the processors; beam search applies the processors
// to log-softmax rows, as Hugging Face does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gptneo/model.h"
#include "gptneo/tokenizer.h"

namespace gptneo {

// ---- options ------------------------------------------------------------------

// How the next token is chosen from one row of logits.
struct SamplingOptions {
  bool greedy = false;             // always the most likely token (the warpers are skipped)
  float temperature = 1.0f;        // logits are divided by it; <= 0 means greedy
  int top_k = 0;                   // keep the k most likely tokens (ties at the k-th kept); 0: all
  float top_p = 1.0f;              // nucleus: the smallest set with this much probability; 1: all
  float min_p = 0.0f;              // drop tokens less likely than min_p × the most likely one; 0: none
  float typical_p = 1.0f;          // locally typical sampling mass (Meister et al.); 1: off
  float repetition_penalty = 1.0f; // HF: logits of tokens in prompt or output: >0 divided, <0 multiplied
  float presence_penalty = 0.0f;   // OpenAI: minus this once for every token already generated
  float frequency_penalty = 0.0f;  // OpenAI: minus this times how often the token was generated
  int no_repeat_ngram_size = 0;    // HF: never repeat an n-gram of prompt + output; 0: off
  std::map<TokenId, float> logit_bias;  // OpenAI: added to the logit (-inf bans the token)
  // Words never generated, however they are tokenized, where they start a
  // word (at the start of the output, or after a byte that is not an ASCII
  // letter or digit). List each capitalisation you want banned.
  std::vector<std::string> banned_words;

  bool is_greedy() const { return greedy || temperature <= 0.0f; }
};

// Hugging Face's `early_stopping` for beam search.
enum class EarlyStopping {
  Heuristic,  // False (HF's default): stop when the best running beam, at its current length, can't beat the worst finished one
  Always,     // True: stop as soon as num_beams hypotheses are finished
  Never,      // "never": the canonical rule, using the longest possible length when length_penalty > 0
};

enum class Truncation {
  Error,  // a prompt longer than the context is an error
  Left,   // keep the end of the prompt (see fit_prompt)
};

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  int64_t min_new_tokens = 0;     // the end-of-text token is banned until this many tokens are generated
  bool stop_at_eos = true;        // false: --ignore-eos
  std::vector<std::string> stop;  // stop sequences: the text ends before the first one found
  SamplingOptions sampling;
  std::optional<uint64_t> seed;   // none: one is drawn and reported in the result
  int num_return_sequences = 1;   // n: sequences returned (sampled independently, or the best beams)
  bool logprobs = false;          // per-token log-probabilities of the chosen tokens
  int top_logprobs = 0;           // and this many most likely alternatives at each step (implies logprobs)
  // Beam search (num_beams > 1): Hugging Face's beam search, do_sample=False.
  int num_beams = 1;
  float length_penalty = 1.0f;
  EarlyStopping early_stopping = EarlyStopping::Heuristic;
  Truncation truncation = Truncation::Error;
  int draft_tokens = 4;           // speculative decoding: tokens drafted per target pass
  // Ids at or above this are never generated (GPT-J pads its vocabulary past
  // the tokenizer's 50257). 0: the model's vocabulary size.
  int64_t sample_vocab = 0;

  // Throws gptneo::Error naming the first invalid option.
  void validate() const;
};

// ---- results ------------------------------------------------------------------

enum class FinishReason {
  Length,     // max_new_tokens reached, or the model's context is full
  Stop,       // a stop sequence was found
  Eos,        // the model generated <|endoftext|>
  Cancelled,  // the caller stopped it (a stream callback returned false, Ctrl-C)
};
const char* to_string(FinishReason reason);

struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0;  // log-softmax of the model's own logits (before any filter)
  std::vector<std::pair<TokenId, float>> top;  // the top_logprobs most likely tokens, best first
};

struct Choice {
  std::vector<TokenId> tokens;   // every generated token (EOS and a stop sequence's tokens included)
  std::string text;              // the text, cut before a stop sequence; empty without a tokenizer
  FinishReason finish_reason = FinishReason::Length;
  std::vector<TokenLogprob> logprobs;  // one per token, when asked for
  double score = 0;              // beam search: the length-penalised sum of log-probabilities
};

struct GenerateResult {
  std::vector<Choice> choices;
  // The first choice's tokens and finish reason, for callers of one sequence.
  std::vector<TokenId> tokens;
  FinishReason finish_reason = FinishReason::Length;
  uint64_t seed = 0;
  int64_t prompt_tokens = 0;            // tokens run through the model (after truncation)
  int64_t truncated_prompt_tokens = 0;  // tokens cut from the start of the prompt
  int64_t generated_tokens = 0;         // over all choices
  double prefill_seconds = 0;
  double decode_seconds = 0;
  // Speculative decoding.
  int64_t draft_proposed = 0;   // tokens the draft model proposed
  int64_t draft_accepted = 0;   // of which the target accepted
  int64_t target_passes = 0;    // forward passes of the target model while decoding
};

// ---- streaming ----------------------------------------------------------------

// One event per generated token. `text` is the newly released text: bytes
// that might still become part of a stop sequence or of an unfinished UTF-8
// character are held back until decided. The event of a sequence's last
// token has finished = true and carries whatever was still held back (a stop
// sequence itself is never released). A sequence that ends without a token
// of its own (cancelled, max_new_tokens = 0, beam search) gets one final
// event with no token.
struct StreamEvent {
  int request = 0;               // index of the request (generate_batch), 0 otherwise
  int choice = 0;                // index of the sequence within its request
  std::optional<TokenId> token;  // the token (none in a final event)
  std::string_view text;
  bool finished = false;
  FinishReason finish_reason = FinishReason::Length;
};
// Return false to stop that sequence (finish reason Cancelled).
using StreamCallback = std::function<bool(const StreamEvent&)>;

// ---- sampling pieces ------------------------------------------------------------

using Rng = std::mt19937_64;
// A uniform double in [0, 1) from 53 bits of the generator (the same on every platform).
double uniform01(Rng& rng);
// A seed from the operating system's entropy source.
uint64_t random_seed();
// The seed of sequence `index` of a request seeded with `seed` (index 0: `seed` itself).
uint64_t choice_seed(uint64_t seed, int index);

// A next-token distribution after the processors and warpers: the tokens
// left, most likely first, with probabilities summing to 1.
struct Distribution {
  std::vector<TokenId> ids;
  std::vector<double> probs;
  double prob(TokenId id) const;  // 0 for a token not in the list
  TokenId sample(Rng& rng) const;
};

// The standard speculative-sampling acceptance rule (Leviathan et al. 2023,
// Chen et al. 2023): the drafted token x ~ q is kept with probability
// min(1, p(x)/q(x)); otherwise a token is drawn from max(0, p - q),
// renormalised. The result is distributed exactly as p.
struct SpeculativeVerdict {
  bool accepted = false;
  TokenId token = 0;
};
SpeculativeVerdict speculative_accept(const Distribution& p, const Distribution& q, TokenId drafted, Rng& rng);

// What a decoder needs to know of the model and tokenizer.
struct DecodeContext {
  const Tokenizer* tokenizer = nullptr;  // for text, stop sequences and banned words
  TokenId eos = -1;                      // the end-of-text id (-1: none)
  int64_t vocab = 0;                     // ids [0, vocab) may be generated
  int64_t max_positions = 0;             // the model's context
};
DecodeContext decode_context(const Model& model, const Tokenizer* tokenizer, const GenerateOptions& options);

class LogitsProcessor;
class TextStreamer;

// The incremental decoding state of one sequence: logits processors, sampler,
// random generator, stop sequences, UTF-8 hold-back and finish reason. It
// never runs the model: step() takes the logits row of the sequence's next
// position, from whichever forward pass computed it.
class SequenceDecoder {
 public:
  SequenceDecoder(const GenerateOptions& options, const DecodeContext& context, std::span<const TokenId> prompt,
                  uint64_t seed);
  SequenceDecoder(SequenceDecoder&&) noexcept;
  SequenceDecoder& operator=(SequenceDecoder&&) noexcept;
  ~SequenceDecoder();
  // A decoder for another sequence of the same request: same state, another seed.
  SequenceDecoder fork(uint64_t seed, bool with_logprobs = true) const;

  struct Step {
    TokenId token = 0;
    std::string text;  // text released by this token (and the final flush when finished)
    bool finished = false;
  };
  // Chooses the next token from `logits` (the model's row, at least
  // context.vocab values), records it, and says what text became safe to show.
  Step step(std::span<const float> logits);

  // The two halves of step(), for speculative decoding: the distribution the
  // next token is drawn from (greedy: all mass on the argmax), and recording
  // a token chosen by other means. `logits` are the model's raw row.
  Distribution distribution(std::span<const float> logits) const;
  Step accept(TokenId token, std::span<const float> logits);
  // Stops the sequence now (finish reason Cancelled); returns the held-back text.
  std::string cancel();

  bool finished() const { return finished_; }
  FinishReason finish_reason() const { return finish_reason_; }
  const std::vector<TokenId>& tokens() const { return tokens_; }
  // The token to run through the model next (the last one generated).
  TokenId last_token() const { return tokens_.back(); }
  // Most tokens this sequence may still generate (max_new_tokens, context).
  int64_t remaining() const { return limit_ - static_cast<int64_t>(tokens_.size()); }
  Rng& rng() { return rng_; }
  // The finished sequence.
  Choice choice() const;

 private:
  SequenceDecoder() = default;
  void finish(FinishReason reason, std::string& text);

  std::shared_ptr<const GenerateOptions> options_;
  DecodeContext context_;
  bool want_logprobs_ = false;
  std::unique_ptr<LogitsProcessor> processor_;
  std::unique_ptr<TextStreamer> streamer_;
  Rng rng_;
  std::vector<TokenId> tokens_;
  std::vector<TokenLogprob> logprobs_;
  int64_t limit_ = 0;
  bool finished_ = false;
  FinishReason finish_reason_ = FinishReason::Length;
};

// ---- text streaming with stop sequences ----------------------------------------

// Turns generated tokens into text that is safe to show: held back are the
// bytes of an unfinished UTF-8 character and any end of the text that could
// be the start of a stop sequence. When a stop sequence appears (even across
// tokens), the text ends right before it.
class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tokenizer, std::vector<std::string> stop);
  // Adds a token's bytes; returns the text released (maybe empty).
  std::string push(TokenId id);
  std::string push_bytes(std::string_view bytes);
  // Everything still held back (nothing is lost at the end).
  std::string flush();
  bool stopped() const { return stopped_; }
  // The full text so far (cut before the stop sequence once stopped).
  const std::string& text() const { return text_; }

 private:
  const Tokenizer* tok_;
  std::vector<std::string> stop_;
  size_t longest_stop_ = 0;
  std::string text_;      // every byte generated (cut at a stop sequence)
  size_t released_ = 0;   // bytes of text_ already returned
  bool stopped_ = false;
};

// ---- prompts -------------------------------------------------------------------

// Applies options.truncation: returns the prompt unchanged when it fits,
// else (Truncation::Left) its last C - min(max_new_tokens, C/2) tokens, where
// C is the context; throws gptneo::Error (Truncation::Error) naming the sizes.
std::vector<TokenId> fit_prompt(std::span<const TokenId> prompt, const GenerateOptions& options,
                                int64_t max_positions);

// ---- the loops -----------------------------------------------------------------

// Generates num_return_sequences continuations of `prompt` (at least one
// token; they share the prompt's KV cache), or runs beam search when
// num_beams > 1, or speculative decoding when `draft` is given. `tokenizer`
// may be null (no text, no stop sequences, no banned words). Throws
// gptneo::Error for invalid options or a prompt that does not fit.
GenerateResult generate(Model& model, const Tokenizer* tokenizer, std::span<const TokenId> prompt,
                        const GenerateOptions& options, const StreamCallback& on_event = {}, Model* draft = nullptr);
// The same without a tokenizer.
GenerateResult generate(Model& model, std::span<const TokenId> prompt, const GenerateOptions& options,
                        const StreamCallback& on_event = {});

struct GenerateRequest {
  std::vector<TokenId> prompt;
  GenerateOptions options;
};
// Runs the requests together: one batched forward pass per step over every
// unfinished sequence of every request. Each request's results are those
// generate() gives it alone with the same seed (up to float rounding of
// batched matrix products). Beam-search requests run on their own.
std::vector<GenerateResult> generate_batch(Model& model, const Tokenizer* tokenizer,
                                           std::span<const GenerateRequest> requests,
                                           const StreamCallback& on_event = {});

// ---- beam search ---------------------------------------------------------------

// Hugging Face's beam search (transformers' `_beam_search`, do_sample=False)
// as a stepper, independent of who runs the model. Each step keeps the
// 2 × num_beams best continuations of all running beams, moves those ending
// in EOS (or a stop sequence, or at max_new_tokens) among the best num_beams
// into the finished hypotheses (score: sum of log-probs / generated
// length^length_penalty), and keeps the num_beams best unfinished ones running.
class BeamSearch {
 public:
  struct Beam {
    std::vector<TokenId> tokens;  // generated so far
    float score = 0;              // sum of the processed log-probabilities
    int parent = 0;               // index of the beam of the previous step it extends
  };
  BeamSearch(const GenerateOptions& options, const DecodeContext& context, std::span<const TokenId> prompt);
  BeamSearch(BeamSearch&&) noexcept;
  ~BeamSearch();

  // The running beams (num_beams of them). Before the first step all are the
  // prompt; after a step, beam i extends running beam parent of the previous
  // step by its last token: run that token next, with the parent's cache.
  const std::vector<Beam>& running() const { return running_; }
  // One logits row (the model's raw output) for each running beam.
  void step(std::span<const float* const> logits);
  bool done() const { return done_; }
  // The best num_return_sequences finished hypotheses, best first.
  std::vector<Choice> results() const;

 private:
  struct Hypothesis;
  struct Candidate;
  bool hits_stop(const Candidate& c) const;

  std::shared_ptr<const GenerateOptions> options_;
  DecodeContext context_;
  int64_t prompt_len_ = 0;
  int64_t max_new_ = 0;
  int64_t step_ = 0;  // tokens generated so far
  std::vector<Beam> running_;
  std::vector<std::unique_ptr<LogitsProcessor>> processors_;  // per running beam
  std::vector<std::vector<TokenLogprob>> logprobs_;           // per running beam
  std::vector<Hypothesis> finished_;
  bool improvement_possible_ = true;
  bool done_ = false;
};

// ---- chat ----------------------------------------------------------------------

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// How a conversation becomes one prompt for a model that has no chat format.
// Each role's text has "{content}" replaced by the message. The default:
//
//   <system>\n\n            (only when there is a system message)
//   User: <message>\n
//   Assistant: <reply>\n
//   ...
//   User: <message>\n
//   Assistant:              (the model continues from here)
//
// and the reply stops at "\nUser:" (the next user marker) or <|endoftext|>.
struct ChatTemplate {
  std::string system = "{content}\n\n";
  std::string user = "User: {content}\n";
  std::string assistant = "Assistant: {content}\n";
  std::string generation_prompt = "Assistant:";
  std::vector<std::string> stop = {"\nUser:"};

  // A JSON file with any of the fields above ("stop": a string or a list).
  static ChatTemplate load(const std::filesystem::path& file);
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt = true) const;
  // The reply's text as it is stored in the conversation and shown (white
  // space removed at both ends).
  static std::string clean_reply(std::string_view generated);
};

// The prompt tokens for `messages` that fit in `budget` tokens: the oldest
// user/assistant turns are dropped (never the system message or the last
// message). `dropped` receives how many messages were left out. Throws
// gptneo::Error when even the system message and the last message do not fit.
std::vector<TokenId> fit_chat(const ChatTemplate& chat, const Tokenizer& tokenizer,
                              std::span<const ChatMessage> messages, int64_t budget, int* dropped = nullptr);

// ---- JSON ----------------------------------------------------------------------

// Reads generation options from a JSON object (a line of a batch file, a
// server request). Accepted keys, with OpenAI and Hugging Face spellings:
// max_new_tokens|max_tokens, min_new_tokens|min_tokens, temperature, top_k,
// top_p, min_p, typical_p, repetition_penalty, presence_penalty,
// frequency_penalty, no_repeat_ngram_size, logit_bias ({"id": bias}),
// ban|banned_words (list), stop (string or list), ignore_eos, greedy, seed,
// n|num_return_sequences, logprobs (bool or count), top_logprobs, num_beams,
// length_penalty, early_stopping (true/false/"never"), truncate ("left"/"none").
// Unknown keys other than those in `ignore` are an error.
void apply_json_options(const nlohmann::json& j, GenerateOptions& options,
                        std::span<const std::string> ignore = {});

// The result as JSON: {text, tokens, prompt_tokens, finish_reason, seed,
// choices: [{index, text, tokens, finish_reason, logprobs?, score?}], timings}.
nlohmann::json result_to_json(const GenerateResult& result, std::span<const TokenId> prompt,
                              const Tokenizer* tokenizer, const GenerateOptions& options);

}  // namespace gptneo
