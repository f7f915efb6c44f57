// Reading OpenAI requests. The generation options gptneo shares with the CLI
// and batch files are read by apply_json_options (one key at a time, so that
// an error names its field); the OpenAI-only fields are read here.
#include "server/request.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "server/api_error.h"

namespace gptneo::server {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = {}) {
  throw ApiError(400, message, param, code);
}

// Options read by apply_json_options under the same name (OpenAI's and
// gptneo's own); the server adds its own checks afterwards.
constexpr std::array kGenerationKeys = {
    "temperature", "top_p",     "top_k",       "min_p",  "typical_p", "repetition_penalty", "presence_penalty",
    "frequency_penalty", "no_repeat_ngram_size", "logit_bias", "stop", "ignore_eos", "greedy", "ban",
    "banned_words", "min_tokens", "min_new_tokens", "truncate"};
// OpenAI fields that change nothing here.
constexpr std::array kIgnoredKeys = {"user", "store", "metadata", "service_tier", "parallel_tool_calls"};

template <size_t N>
bool contains(const std::array<const char*, N>& keys, const std::string& key) {
  return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; });
}

int64_t integer(const json& v, const std::string& key, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(key, fmt::format("\"{}\" must be an integer (got {})", key, v.dump()));
  // Integers past int64 parse as unsigned.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    bad(key, fmt::format("\"{}\" must be at most {} (got {})", key, hi, v.dump()));
  const auto x = v.get<int64_t>();
  if (x < lo || x > hi) bad(key, fmt::format("\"{}\" must be in {}..{} (got {})", key, lo, hi, x));
  return x;
}

bool boolean(const json& v, const std::string& key) {
  if (!v.is_boolean()) bad(key, fmt::format("\"{}\" must be true or false (got {})", key, v.dump()));
  return v.get<bool>();
}

void check_model(const json& v, const RequestLimits& limits) {
  if (!v.is_string()) bad("model", "\"model\" must be a string");
  const auto name = v.get<std::string>();
  if (name != limits.model_name)
    throw ApiError(404, fmt::format("The model `{}` does not exist: this server serves `{}`", name, limits.model_name),
                   "model", "model_not_found");
}

// The request field an error of GenerateOptions::validate() is about: its
// messages start with the option's name ("top_p must be ...") or describe it.
std::string option_in_message(const std::string& message) {
  static const std::pair<const char*, const char*> described[] = {
      {"stop sequence", "stop"},        {"banned word", "ban"},         {"logit bias", "logit_bias"},
      {"max_new_tokens", "max_tokens"}, {"min_new_tokens", "min_tokens"}, {"num_return_sequences", "n"}};
  for (const auto& [words, field] : described)
    if (message.find(words) != std::string::npos) return field;
  const auto end = message.find_first_not_of("abcdefghijklmnopqrstuvwxyz_");
  return message.substr(0, end == std::string::npos ? message.size() : end);
}

// Fields both endpoints read. Returns false for a key that is not one of them.
struct CommonFields {
  std::optional<int64_t> max_tokens;
  std::optional<int64_t> best_of;

  bool read(const std::string& key, const json& v, GenerationRequest& r, const RequestLimits& limits) {
    if (key == "model") {
      check_model(v, limits);
    } else if (key == "max_tokens" || key == "max_completion_tokens" || key == "max_new_tokens") {
      max_tokens = integer(v, key, 0, std::numeric_limits<int32_t>::max());
    } else if (key == "n") {
      r.options.num_return_sequences = static_cast<int>(integer(v, "n", 1, limits.max_n));
    } else if (key == "best_of") {
      best_of = integer(v, key, 1, limits.max_n);
    } else if (key == "stream") {
      r.stream = boolean(v, key);
    } else if (key == "stream_options") {
      if (!v.is_object()) bad(key, "\"stream_options\" must be an object");
      for (const auto& [k, x] : v.items()) {
        if (k != "include_usage") bad(key, fmt::format("unknown field \"{}\" in stream_options", k));
        if (!x.is_null()) r.include_usage = boolean(x, "stream_options.include_usage");
      }
    } else if (key == "seed") {
      if (!v.is_number_integer()) bad(key, fmt::format("\"seed\" must be an integer (got {})", v.dump()));
      // Negative seeds are as good as any: their two's complement.
      r.options.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
    } else if (key == "user") {
      if (!v.is_string()) bad(key, "\"user\" must be a string");
      r.user = v.get<std::string>();
    } else if (contains(kIgnoredKeys, key)) {
    } else if (contains(kGenerationKeys, key)) {
      try {
        apply_json_options(json{{key, v}}, r.options);
      } catch (const Error& e) {
        bad(key, e.what());
      }
    } else {
      return false;
    }
    return true;
  }
};

void check_options(GenerationRequest& r, const Tokenizer& tokenizer, const RequestLimits& limits,
                   std::optional<int64_t> best_of) {
  GenerateOptions& o = r.options;
  if (best_of && *best_of != o.num_return_sequences)
    bad("best_of", "best_of is not supported (only best_of equal to n)");
  if (static_cast<int>(o.stop.size()) > limits.max_stop)
    bad("stop", fmt::format("at most {} stop sequences (got {})", limits.max_stop, o.stop.size()));
  for (const auto& [id, bias] : o.sampling.logit_bias)
    if (id >= tokenizer.vocab_size())
      bad("logit_bias", fmt::format("logit_bias names token {}, outside the vocabulary of {}", id, tokenizer.vocab_size()));
  try {
    o.validate();
  } catch (const Error& e) {
    bad(option_in_message(e.what()), e.what());
  }
}

// Applies truncation and the context checks to every prompt, then sets
// max_new_tokens (the given one, else `default_max`).
void fit_context(GenerationRequest& r, std::optional<int64_t> max_tokens, int64_t default_max,
                 const RequestLimits& limits, const char* prompt_param) {
  const int64_t ctx = limits.context;
  GenerateOptions& o = r.options;
  o.max_new_tokens = max_tokens.value_or(default_max);
  for (auto& prompt : r.prompts) {
    if (o.truncation == Truncation::Left) prompt = fit_prompt(prompt, o, ctx);
    const auto p = static_cast<int64_t>(prompt.size());
    if (p > ctx)
      throw ApiError(400,
                     fmt::format("This model's maximum context length is {} tokens, however the prompt has {} tokens. "
                                 "Please shorten the prompt (or set \"truncate\": \"left\").",
                                 ctx, p),
                     prompt_param, "context_length_exceeded");
    if (max_tokens && p + *max_tokens > ctx)
      throw ApiError(400,
                     fmt::format("This model's maximum context length is {} tokens, however you requested {} tokens "
                                 "({} in the prompt, {} for the completion). Please reduce the prompt or max_tokens.",
                                 ctx, p + *max_tokens, p, *max_tokens),
                     "max_tokens", "context_length_exceeded");
  }
}

std::vector<TokenId> token_list(const json& v, const Tokenizer& tokenizer) {
  if (v.empty()) bad("prompt", "a prompt of token ids is empty");
  std::vector<TokenId> ids;
  ids.reserve(v.size());
  for (const auto& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= tokenizer.vocab_size())
      bad("prompt", fmt::format("prompt token {} is not a token id (0..{})", x.dump(), tokenizer.vocab_size() - 1));
    ids.push_back(x.get<TokenId>());
  }
  return ids;
}

// "prompt": a string, a list of strings, a list of token ids, or a list of
// lists of token ids.
void read_prompts(const json& v, const Tokenizer& tokenizer, GenerationRequest& r, const RequestLimits& limits) {
  auto add_text = [&](const std::string& text) {
    std::vector<TokenId> ids = tokenizer.encode(text);
    // An empty prompt starts after <|endoftext|>, as OpenAI's models do.
    if (ids.empty()) ids.push_back(tokenizer.eos_id());
    r.prompts.push_back(std::move(ids));
    r.prompt_texts.push_back(text);
  };
  auto add_ids = [&](const json& list) {
    r.prompts.push_back(token_list(list, tokenizer));
    r.prompt_texts.push_back(tokenizer.decode(r.prompts.back()));
  };
  const char* shape = "\"prompt\" must be a string, a list of strings, a list of token ids or a list of such lists";
  if (v.is_string()) {
    add_text(v.get<std::string>());
  } else if (v.is_array() && !v.empty()) {
    if (static_cast<int>(v.size()) > limits.max_prompts && !v[0].is_number())
      bad("prompt", fmt::format("at most {} prompts in one request (got {})", limits.max_prompts, v.size()));
    if (std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
      for (const auto& s : v) add_text(s.get<std::string>());
    } else if (std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); })) {
      add_ids(v);
    } else if (std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_array(); })) {
      for (const auto& list : v) add_ids(list);
    } else {
      bad("prompt", shape);
    }
  } else {
    bad("prompt", v.is_array() ? "\"prompt\" is an empty list" : shape);
  }
}

std::string message_content(const json& content, size_t index) {
  const std::string param = fmt::format("messages[{}].content", index);
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(param, fmt::format("{} must be a string or a list of text parts", param));
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad(param, fmt::format("{}: only parts {{\"type\": \"text\", \"text\": \"...\"}} are supported", param));
    text += part["text"].get<std::string>();
  }
  return text;
}

// The deepest nesting of arrays and objects in JSON text (brackets inside
// strings do not count). Deep documents are refused before parsing: the
// parser copes, but printing such a value in an error message, or freeing
// it, recurses once per level.
int64_t json_depth(const std::string& text) {
  int64_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

constexpr int64_t kMaxJsonDepth = 64;

}  // namespace

nlohmann::json parse_json_body(const std::string& body) {
  if (const auto bad_byte = utf8_first_invalid(body))
    bad({}, fmt::format("the request body is not valid UTF-8 (byte {})", *bad_byte), "invalid_utf8");
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) bad({}, "the request body is empty: send a JSON object");
  if (json_depth(body) > kMaxJsonDepth)
    bad({}, fmt::format("the request body nests arrays and objects more than {} deep", kMaxJsonDepth), "invalid_json");
  try {
    json j = json::parse(body);
    if (!j.is_object()) bad({}, "the request body must be a JSON object");
    return j;
  } catch (const json::exception& e) {
    bad({}, fmt::format("the request body is not valid JSON: {}", e.what()), "invalid_json");
  }
}

GenerationRequest parse_completion_request(const json& body, const Tokenizer& tokenizer, const RequestLimits& limits) {
  GenerationRequest r;
  r.endpoint = Endpoint::Completions;
  CommonFields common;
  bool has_prompt = false;
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;  // null means "not given" for every field
    if (common.read(key, v, r, limits)) continue;
    if (key == "prompt") {
      read_prompts(v, tokenizer, r, limits);
      has_prompt = true;
    } else if (key == "echo") {
      r.echo = boolean(v, key);
    } else if (key == "logprobs") {
      // The completions API: how many alternatives (0: the chosen token's only).
      r.logprobs = true;
      r.top_logprobs = static_cast<int>(integer(v, key, 0, 20));
    } else if (key == "suffix") {
      if (!v.is_string() || !v.get<std::string>().empty()) bad(key, "\"suffix\" (insertion) is not supported");
    } else {
      bad(key, fmt::format("Unrecognized request argument supplied: {}", key), "unknown_parameter");
    }
  }
  if (!has_prompt) bad("prompt", "\"prompt\" is required");
  check_options(r, tokenizer, limits, common.best_of);
  // OpenAI's default for completions.
  fit_context(r, common.max_tokens, 16, limits, "prompt");
  return r;
}

std::vector<ChatMessage> parse_chat_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) bad("messages", "\"messages\" must be a non-empty list");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad(param, fmt::format("{} must be an object {{\"role\", \"content\"}}", param));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) bad(param + ".role", fmt::format("{} has no \"role\"", param));
    ChatMessage msg;
    msg.role = role->get<std::string>();
    if (msg.role == "developer") msg.role = "system";  // OpenAI's newer name for it
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      bad(param + ".role", fmt::format("{}: role \"{}\" is not supported (system, user or assistant)", param, msg.role));
    const auto content = m.find("content");
    if (content == m.end() && msg.role != "assistant") bad(param + ".content", fmt::format("{} has no \"content\"", param));
    if (content != m.end()) msg.content = message_content(*content, i);
    out.push_back(std::move(msg));
  }
  return out;
}

GenerationRequest parse_chat_request(const json& body, const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     const RequestLimits& limits) {
  GenerationRequest r;
  r.endpoint = Endpoint::Chat;
  CommonFields common;
  std::optional<std::vector<ChatMessage>> messages;
  std::optional<int64_t> top_logprobs;
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;
    if (common.read(key, v, r, limits)) continue;
    if (key == "messages") {
      messages = parse_chat_messages(v);
    } else if (key == "logprobs") {
      r.logprobs = boolean(v, key);
    } else if (key == "top_logprobs") {
      top_logprobs = integer(v, key, 0, 20);
    } else if (key == "response_format") {
      if (!v.is_object() || v.value("type", "") != "text") bad(key, "only \"response_format\": {\"type\": \"text\"} is supported");
    } else if (key == "tools" || key == "functions") {
      if (!v.is_array() || !v.empty()) bad(key, "tools and functions are not supported by this model");
    } else if (key == "tool_choice" || key == "function_call") {
      if (v != "none") bad(key, "tools and functions are not supported by this model");
    } else {
      bad(key, fmt::format("Unrecognized request argument supplied: {}", key), "unknown_parameter");
    }
  }
  if (!messages) bad("messages", "\"messages\" is required");
  if (top_logprobs) {
    if (!r.logprobs) bad("top_logprobs", "\"top_logprobs\" needs \"logprobs\": true");
    r.top_logprobs = static_cast<int>(*top_logprobs);
  }
  check_options(r, tokenizer, limits, common.best_of);
  // The template's stop sequences end the reply where the next turn would begin.
  std::vector<std::string> stop = chat.stop;
  for (auto& s : r.options.stop)
    if (std::find(stop.begin(), stop.end(), s) == stop.end()) stop.push_back(s);
  r.options.stop = std::move(stop);
  const std::string text = chat.render(*messages);
  r.prompts.push_back(tokenizer.encode(text));
  r.prompt_texts.push_back(text);
  // OpenAI's chat default: as long as the context allows.
  fit_context(r, common.max_tokens, limits.context, limits, "messages");
  return r;
}

}  // namespace gptneo::server
