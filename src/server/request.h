// Requests of the OpenAI API read into what the scheduler runs: prompt token
// ids, generation options, and how the answer is shaped. Every bad field is
// an ApiError naming it (400), an unknown model a 404.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gptneo/generate.h"
#include "gptneo/tokenizer.h"

namespace gptneo::server {

enum class Endpoint { Completions, Chat };

// The server's side of the checks.
struct RequestLimits {
  std::string model_name;  // the only model a request may name
  int64_t context = 0;     // positions of one sequence
  int max_n = 16;          // most sequences per prompt (n)
  int max_prompts = 64;    // most prompts in one completions request
  int max_stop = 16;       // most stop sequences
};

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::vector<std::vector<TokenId>> prompts;  // token ids of each prompt
  std::vector<std::string> prompt_texts;      // the text of each prompt (for echo)
  // Options of every sequence: n is options.num_return_sequences. Their
  // logprobs fields are off: the server computes log-probabilities itself,
  // as `logprobs` and `top_logprobs` below ask.
  GenerateOptions options;
  bool logprobs = false;       // log-probability of each token
  int top_logprobs = 0;        // and of this many alternatives
  bool echo = false;           // completions: the prompt is part of the text (and of logprobs)
  bool stream = false;         // Server-Sent Events
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
  std::string user;

  int n() const { return options.num_return_sequences; }
  // echo + logprobs: the log-probabilities of the prompt's own tokens.
  bool prompt_logprobs() const { return echo && logprobs; }
};

// The body as JSON: a 400 ApiError for invalid UTF-8 or malformed JSON.
nlohmann::json parse_json_body(const std::string& body);

// POST /v1/completions
GenerationRequest parse_completion_request(const nlohmann::json& body, const Tokenizer& tokenizer,
                                           const RequestLimits& limits);
// POST /v1/chat/completions: the messages rendered with `chat`, whose stop
// sequences are added to the request's.
GenerationRequest parse_chat_request(const nlohmann::json& body, const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     const RequestLimits& limits);

// The chat messages of a request body (roles system/developer, user,
// assistant; content a string or a list of text parts).
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages);

}  // namespace gptneo::server
