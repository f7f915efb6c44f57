// A job's output in OpenAI's response shapes: the whole response at the end
// (`text_completion`, `chat.completion`), or chunk by chunk as it is
// generated (`text_completion` / `chat.completion.chunk` objects, sent as
// Server-Sent Events).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gptneo/tokenizer.h"
#include "server/job.h"
#include "server/request.h"

namespace gptneo::server {

// JSON text; invalid UTF-8 (a character cut at the very end of a sequence)
// becomes U+FFFD rather than an exception.
std::string dump_json(const nlohmann::json& j);
// One Server-Sent Event: "data: {json}\n\n".
std::string sse_event(const nlohmann::json& j);
// The end of the stream: "data: [DONE]\n\n".
std::string sse_done();
// OpenAI's finish_reason: "stop" (a stop sequence or end of text), "length",
// or "cancelled" (the server shut down before the end).
const char* finish_reason_name(FinishReason reason);
// A token as OpenAI spells it: its text, or "bytes:\xNN..." when its bytes
// are not valid UTF-8 on their own.
std::string token_string(const Tokenizer& tokenizer, TokenId id);

class ResponseBuilder {
 public:
  ResponseBuilder(const GenerationRequest& request, const Tokenizer& tokenizer, std::string model_name);

  // Streaming: records the update and returns the chunks it makes.
  std::vector<nlohmann::json> chunks(const Job::Update& update);
  // The last chunk of a stream with stream_options.include_usage.
  nlohmann::json usage_chunk(const Job& job) const;
  // Non-streaming: records the update.
  void add(const Job::Update& update);
  // The whole response, once the job is done.
  nlohmann::json response(const Job& job) const;

  int64_t completion_tokens() const;
  const std::string& id() const { return id_; }

 private:
  struct ChoiceState {
    std::string text;
    std::vector<TokenId> tokens;
    std::vector<TokenLogprob> logprobs;
    std::optional<FinishReason> finish;
    bool started = false;       // a chunk of this choice was sent
    bool text_started = false;  // chat: the reply's first non-space character was seen
    std::string held_space;     // chat: white space that may end the reply
    int64_t text_offset = 0;    // completions logprobs: offset of the next token
  };

  nlohmann::json chunk_base() const;
  nlohmann::json usage(const Job& job) const;
  // The text of an event as it is shown. A chat reply is trimmed as
  // ChatTemplate::clean_reply does, also while streaming: white space is
  // held back until more text follows it, and dropped at either end.
  std::string shown_text(ChoiceState& c, const std::string& text);
  nlohmann::json completion_logprobs(const std::vector<TokenLogprob>& entries, bool first_is_prompt_start,
                                     int64_t& offset) const;
  nlohmann::json chat_logprobs(const std::vector<TokenLogprob>& entries) const;
  void record(const TokenEvent& e);

  const GenerationRequest& request_;
  const Tokenizer& tokenizer_;
  std::string model_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<ChoiceState> choices_;
  std::vector<std::optional<std::vector<TokenLogprob>>> prompt_logprobs_;  // per prompt
};

}  // namespace gptneo::server
