// Generation options from JSON (batch files, server requests) and results as
// JSON (the CLI's --json, batch output).
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo {

namespace {

using nlohmann::json;

double number(const json& v, const std::string& key) {
  if (!v.is_number()) throw Error(fmt::format("option \"{}\" must be a number (got {})", key, v.dump()));
  return v.get<double>();
}

int64_t integer(const json& v, const std::string& key) {
  if (!v.is_number_integer()) throw Error(fmt::format("option \"{}\" must be an integer (got {})", key, v.dump()));
  return v.get<int64_t>();
}

bool boolean(const json& v, const std::string& key) {
  if (!v.is_boolean()) throw Error(fmt::format("option \"{}\" must be true or false (got {})", key, v.dump()));
  return v.get<bool>();
}

std::vector<std::string> strings(const json& v, const std::string& key) {
  if (v.is_string()) return {v.get<std::string>()};
  std::vector<std::string> out;
  if (v.is_array())
    for (const auto& s : v) {
      if (!s.is_string()) break;
      out.push_back(s.get<std::string>());
    }
  if (!v.is_array() || out.size() != v.size())
    throw Error(fmt::format("option \"{}\" must be a string or a list of strings", key));
  return out;
}

float bias_value(const json& v, const std::string& id) {
  if (v.is_string() && v.get<std::string>() == "-inf") return -std::numeric_limits<float>::infinity();
  if (!v.is_number()) throw Error(fmt::format("logit_bias for token {} must be a number or \"-inf\"", id));
  return v.get<float>();
}

TokenId token_id(const std::string& s) {
  size_t used = 0;
  long long v = -1;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || v < 0 || v > std::numeric_limits<TokenId>::max())
    throw Error(fmt::format("logit_bias key \"{}\" is not a token id", s));
  return static_cast<TokenId>(v);
}

}  // namespace

void apply_json_options(const json& j, GenerateOptions& o, std::span<const std::string> ignore) {
  if (!j.is_object()) throw Error("generation options must be a JSON object");
  SamplingOptions& s = o.sampling;
  for (const auto& [key, v] : j.items()) {
    if (std::find(ignore.begin(), ignore.end(), key) != ignore.end()) continue;
    if (key == "max_new_tokens" || key == "max_tokens") o.max_new_tokens = integer(v, key);
    else if (key == "min_new_tokens" || key == "min_tokens") o.min_new_tokens = integer(v, key);
    else if (key == "temperature") s.temperature = static_cast<float>(number(v, key));
    else if (key == "top_k") s.top_k = static_cast<int>(integer(v, key));
    else if (key == "top_p") s.top_p = static_cast<float>(number(v, key));
    else if (key == "min_p") s.min_p = static_cast<float>(number(v, key));
    else if (key == "typical_p") s.typical_p = static_cast<float>(number(v, key));
    else if (key == "repetition_penalty") s.repetition_penalty = static_cast<float>(number(v, key));
    else if (key == "presence_penalty") s.presence_penalty = static_cast<float>(number(v, key));
    else if (key == "frequency_penalty") s.frequency_penalty = static_cast<float>(number(v, key));
    else if (key == "no_repeat_ngram_size") s.no_repeat_ngram_size = static_cast<int>(integer(v, key));
    else if (key == "logit_bias") {
      if (!v.is_object()) throw Error("option \"logit_bias\" must be an object {\"token id\": bias}");
      s.logit_bias.clear();
      for (const auto& [id, bias] : v.items()) s.logit_bias[token_id(id)] = bias_value(bias, id);
    } else if (key == "ban" || key == "banned_words") s.banned_words = strings(v, key);
    else if (key == "stop") o.stop = v.is_null() ? std::vector<std::string>{} : strings(v, key);
    else if (key == "ignore_eos") o.stop_at_eos = !boolean(v, key);
    else if (key == "greedy") s.greedy = boolean(v, key);
    else if (key == "seed") {
      if (v.is_null()) o.seed.reset();
      else if (v.is_number_unsigned()) o.seed = v.get<uint64_t>();
      else throw Error(fmt::format("option \"seed\" must be a non-negative integer (got {})", v.dump()));
    } else if (key == "n" || key == "num_return_sequences") o.num_return_sequences = static_cast<int>(integer(v, key));
    else if (key == "logprobs") {
      // Chat API: true/false; completions API: how many alternatives.
      if (v.is_boolean()) o.logprobs = v.get<bool>();
      else if (v.is_null()) o.logprobs = false;
      else {
        o.logprobs = true;
        o.top_logprobs = static_cast<int>(integer(v, key));
      }
    } else if (key == "top_logprobs") o.top_logprobs = static_cast<int>(integer(v, key));
    else if (key == "num_beams") o.num_beams = static_cast<int>(integer(v, key));
    else if (key == "length_penalty") o.length_penalty = static_cast<float>(number(v, key));
    else if (key == "early_stopping") {
      if (v.is_boolean()) o.early_stopping = v.get<bool>() ? EarlyStopping::Always : EarlyStopping::Heuristic;
      else if (v.is_string() && v.get<std::string>() == "never") o.early_stopping = EarlyStopping::Never;
      else throw Error("option \"early_stopping\" must be true, false or \"never\"");
    } else if (key == "truncate") {
      const std::string t = v.is_string() ? v.get<std::string>() : "";
      if (t == "left") o.truncation = Truncation::Left;
      else if (t == "none") o.truncation = Truncation::Error;
      else throw Error("option \"truncate\" must be \"left\" or \"none\"");
    } else if (key == "draft_tokens") o.draft_tokens = static_cast<int>(integer(v, key));
    else throw Error(fmt::format("unknown generation option \"{}\"", key));
  }
}

json result_to_json(const GenerateResult& r, std::span<const TokenId> prompt, const Tokenizer* tok,
                    const GenerateOptions& options) {
  auto token_text = [&](TokenId id) { return tok ? tok->token_bytes(id) : std::string(); };
  json choices = json::array();
  for (size_t i = 0; i < r.choices.size(); ++i) {
    const Choice& c = r.choices[i];
    json jc = {{"index", i}, {"text", c.text}, {"tokens", c.tokens}, {"finish_reason", to_string(c.finish_reason)}};
    if (options.num_beams > 1) jc["score"] = c.score;
    if (options.logprobs || options.top_logprobs > 0) {
      json lp = json::array();
      for (const TokenLogprob& t : c.logprobs) {
        json e = {{"token", t.token}, {"text", token_text(t.token)}, {"logprob", t.logprob}};
        if (options.top_logprobs > 0) {
          json top = json::array();
          for (const auto& [id, v] : t.top) top.push_back({{"token", id}, {"text", token_text(id)}, {"logprob", v}});
          e["top_logprobs"] = std::move(top);
        }
        lp.push_back(std::move(e));
      }
      jc["logprobs"] = std::move(lp);
    }
    choices.push_back(std::move(jc));
  }
  const Choice empty;
  const Choice& first = r.choices.empty() ? empty : r.choices[0];
  auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
  // The first token of each sequence comes from the prompt's pass.
  const auto decoded = std::max<int64_t>(0, r.generated_tokens - static_cast<int64_t>(r.choices.size()));
  json timings = {{"prompt_tokens", r.prompt_tokens},
                  {"generated_tokens", r.generated_tokens},
                  {"prefill_seconds", r.prefill_seconds},
                  {"decode_seconds", r.decode_seconds},
                  {"prefill_tokens_per_second", rate(static_cast<double>(r.prompt_tokens), r.prefill_seconds)},
                  {"decode_tokens_per_second", rate(static_cast<double>(decoded), r.decode_seconds)}};
  if (r.target_passes > 0) {
    timings["draft_tokens_proposed"] = r.draft_proposed;
    timings["draft_tokens_accepted"] = r.draft_accepted;
    timings["acceptance_rate"] = rate(static_cast<double>(r.draft_accepted), static_cast<double>(r.draft_proposed));
    timings["target_passes"] = r.target_passes;
    timings["tokens_per_target_pass"] = rate(static_cast<double>(decoded), static_cast<double>(r.target_passes));
  }
  // The prompt the model saw (its end, when it was truncated).
  std::vector<TokenId> used_prompt(prompt.begin(), prompt.end());
  if (r.truncated_prompt_tokens > 0 && r.truncated_prompt_tokens <= static_cast<int64_t>(prompt.size()))
    used_prompt.erase(used_prompt.begin(), used_prompt.begin() + r.truncated_prompt_tokens);
  json j = {{"text", first.text},
            {"tokens", first.tokens},
            {"prompt_tokens", used_prompt},
            {"finish_reason", to_string(first.finish_reason)},
            {"seed", r.seed},
            {"choices", std::move(choices)},
            {"timings", std::move(timings)}};
  if (r.truncated_prompt_tokens > 0) j["truncated_prompt_tokens"] = r.truncated_prompt_tokens;
  return j;
}

}  // namespace gptneo
