#include "server/response_builder.h"

#include <cmath>
#include <ctime>
#include <limits>
#include <random>

#include <fmt/format.h>

namespace gptneo::server {

using nlohmann::json;

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
    case FinishReason::Eos: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "stop";
}

std::string token_string(const Tokenizer& tokenizer, TokenId id) {
  const std::string& bytes = tokenizer.token_bytes(id);
  if (!utf8_first_invalid(bytes) && utf8_complete_prefix(bytes) == bytes.size()) return bytes;
  std::string out = "bytes:";
  for (unsigned char b : bytes) out += fmt::format("\\x{:02x}", b);
  return out;
}

namespace {

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

json byte_list(const std::string& s) {
  json out = json::array();
  for (unsigned char b : s) out.push_back(b);
  return out;
}

// NaN (the first prompt token, which has no log-probability) is written as null.
json logprob_value(float v) { return std::isnan(v) ? json(nullptr) : json(v); }

}  // namespace

ResponseBuilder::ResponseBuilder(const GenerationRequest& request, const Tokenizer& tokenizer, std::string model_name)
    : request_(request),
      tokenizer_(tokenizer),
      model_(std::move(model_name)),
      id_(random_id(request.endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-")),
      created_(static_cast<int64_t>(std::time(nullptr))),
      choices_(request.prompts.size() * static_cast<size_t>(request.n())),
      prompt_logprobs_(request.prompts.size()) {
  for (size_t i = 0; i < choices_.size(); ++i) {
    const size_t prompt = i / static_cast<size_t>(request.n());
    choices_[i].text_offset = request.echo ? 0 : static_cast<int64_t>(request.prompt_texts[prompt].size());
  }
}

std::string ResponseBuilder::shown_text(ChoiceState& c, const std::string& text) {
  if (request_.endpoint != Endpoint::Chat) return text;
  constexpr const char* kSpace = " \t\n\v\f\r";  // std::isspace's, as clean_reply uses
  std::string s = std::move(c.held_space) + text;
  c.held_space.clear();
  if (!c.text_started) {
    // The template ends with "Assistant:"; the space after it is not the reply's.
    const size_t first = s.find_first_not_of(kSpace);
    if (first == std::string::npos) return {};
    s.erase(0, first);
    c.text_started = true;
  }
  const size_t last = s.find_last_not_of(kSpace);
  c.held_space = s.substr(last + 1);
  s.resize(last + 1);
  return s;
}

void ResponseBuilder::record(const TokenEvent& e) {
  ChoiceState& c = choices_.at(static_cast<size_t>(e.index));
  if (e.token) c.tokens.push_back(*e.token);
  if (e.logprob) c.logprobs.push_back(*e.logprob);
  if (e.finished) c.finish = e.finish_reason;
}

void ResponseBuilder::add(const Job::Update& update) {
  for (const PromptLogprobs& p : update.prompts) prompt_logprobs_.at(static_cast<size_t>(p.prompt)) = p.entries;
  for (const TokenEvent& e : update.events) {
    ChoiceState& c = choices_.at(static_cast<size_t>(e.index));
    c.text += shown_text(c, e.text);
    record(e);
  }
}

json ResponseBuilder::chunk_base() const {
  return {{"id", id_},
          {"object", request_.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", model_},
          {"system_fingerprint", "gptneo"}};
}

json ResponseBuilder::completion_logprobs(const std::vector<TokenLogprob>& entries, bool first_is_prompt_start,
                                          int64_t& offset) const {
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < entries.size(); ++i) {
    const TokenLogprob& t = entries[i];
    const std::string s = token_string(tokenizer_, t.token);
    tokens.push_back(s);
    values.push_back(logprob_value(t.logprob));
    if (i == 0 && first_is_prompt_start) {
      tops.push_back(nullptr);
    } else {
      json top = json::object();
      for (const auto& [id, v] : t.top) top[token_string(tokenizer_, id)] = v;
      tops.push_back(std::move(top));
    }
    offsets.push_back(offset);
    offset += static_cast<int64_t>(tokenizer_.token_bytes(t.token).size());
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json ResponseBuilder::chat_logprobs(const std::vector<TokenLogprob>& entries) const {
  json content = json::array();
  for (const TokenLogprob& t : entries) {
    json top = json::array();
    for (const auto& [id, v] : t.top) {
      const std::string& bytes = tokenizer_.token_bytes(id);
      top.push_back({{"token", token_string(tokenizer_, id)}, {"logprob", v}, {"bytes", byte_list(bytes)}});
    }
    content.push_back({{"token", token_string(tokenizer_, t.token)},
                       {"logprob", t.logprob},
                       {"bytes", byte_list(tokenizer_.token_bytes(t.token))},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

std::vector<json> ResponseBuilder::chunks(const Job::Update& update) {
  std::vector<json> out;
  for (const PromptLogprobs& p : update.prompts) prompt_logprobs_.at(static_cast<size_t>(p.prompt)) = p.entries;
  const bool chat = request_.endpoint == Endpoint::Chat;
  for (const TokenEvent& e : update.events) {
    ChoiceState& c = choices_.at(static_cast<size_t>(e.index));
    std::string text = shown_text(c, e.text);
    c.text += text;
    record(e);
    std::vector<TokenLogprob> entries;
    if (e.logprob) entries.push_back(*e.logprob);
    json finish = e.finished ? json(finish_reason_name(e.finish_reason)) : json(nullptr);
    if (chat) {
      if (!c.started) {
        json first = chunk_base();
        first["choices"] = json::array(
            {{{"index", e.index}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
              {"finish_reason", nullptr}}});
        out.push_back(std::move(first));
        c.started = true;
      }
      if (!text.empty() || e.logprob) {
        json j = chunk_base();
        j["choices"] = json::array({{{"index", e.index},
                                     {"delta", {{"content", text}}},
                                     {"logprobs", request_.logprobs ? chat_logprobs(entries) : json(nullptr)},
                                     {"finish_reason", nullptr}}});
        out.push_back(std::move(j));
      }
      if (e.finished) {
        json j = chunk_base();
        j["choices"] = json::array(
            {{{"index", e.index}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", finish}}});
        out.push_back(std::move(j));
      }
      continue;
    }
    bool prompt_start = false;
    if (!c.started && request_.echo) {
      // The first chunk of a choice carries the prompt (and its log-probabilities).
      const size_t p = static_cast<size_t>(e.index / request_.n());
      text = request_.prompt_texts[p] + text;
      if (request_.logprobs && prompt_logprobs_[p]) {
        std::vector<TokenLogprob> all = {{request_.prompts[p][0], std::numeric_limits<float>::quiet_NaN(), {}}};
        all.insert(all.end(), prompt_logprobs_[p]->begin(), prompt_logprobs_[p]->end());
        all.insert(all.end(), entries.begin(), entries.end());
        entries = std::move(all);
        prompt_start = true;
      }
    }
    if (text.empty() && entries.empty() && !e.finished) continue;
    c.started = true;
    json j = chunk_base();
    j["choices"] = json::array(
        {{{"index", e.index},
          {"text", text},
          {"logprobs", request_.logprobs ? completion_logprobs(entries, prompt_start, c.text_offset) : json(nullptr)},
          {"finish_reason", finish}}});
    out.push_back(std::move(j));
  }
  return out;
}

json ResponseBuilder::usage(const Job& job) const {
  const int64_t completion = completion_tokens();
  return {{"prompt_tokens", job.prompt_tokens()},
          {"completion_tokens", completion},
          {"total_tokens", job.prompt_tokens() + completion},
          {"prompt_tokens_details", {{"cached_tokens", job.cached_tokens()}}}};
}

json ResponseBuilder::usage_chunk(const Job& job) const {
  json j = chunk_base();
  j["choices"] = json::array();
  j["usage"] = usage(job);
  return j;
}

int64_t ResponseBuilder::completion_tokens() const {
  int64_t n = 0;
  for (const ChoiceState& c : choices_) n += static_cast<int64_t>(c.tokens.size());
  return n;
}

json ResponseBuilder::response(const Job& job) const {
  const bool chat = request_.endpoint == Endpoint::Chat;
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& c = choices_[i];
    const json finish = finish_reason_name(c.finish.value_or(FinishReason::Length));
    if (chat) {
      choices.push_back({{"index", i},
                         {"message", {{"role", "assistant"}, {"content", c.text}}},
                         {"logprobs", request_.logprobs ? chat_logprobs(c.logprobs) : json(nullptr)},
                         {"finish_reason", finish}});
      continue;
    }
    const size_t p = i / static_cast<size_t>(request_.n());
    std::string text = request_.echo ? request_.prompt_texts[p] + c.text : c.text;
    json logprobs = nullptr;
    if (request_.logprobs) {
      std::vector<TokenLogprob> entries;
      const bool with_prompt = request_.echo && prompt_logprobs_[p].has_value();
      if (with_prompt) {
        entries.push_back({request_.prompts[p][0], std::numeric_limits<float>::quiet_NaN(), {}});
        entries.insert(entries.end(), prompt_logprobs_[p]->begin(), prompt_logprobs_[p]->end());
      }
      entries.insert(entries.end(), c.logprobs.begin(), c.logprobs.end());
      int64_t offset = request_.echo ? 0 : static_cast<int64_t>(request_.prompt_texts[p].size());
      logprobs = completion_logprobs(entries, with_prompt, offset);
    }
    choices.push_back({{"index", i}, {"text", std::move(text)}, {"logprobs", logprobs}, {"finish_reason", finish}});
  }
  return {{"id", id_},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model_},
          {"system_fingerprint", "gptneo"},
          {"choices", std::move(choices)},
          {"usage", usage(job)}};
}

}  // namespace gptneo::server
