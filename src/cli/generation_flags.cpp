#include "cli/generation_flags.h"

#include <cmath>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::cli {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    switch (s[++i]) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      default: out += '\\'; out += s[i];
    }
  }
  return out;
}

void GenerationFlags::add_to(CLI::App& cmd, bool for_chat) {
  GenerateOptions& o = options;
  SamplingOptions& s = o.sampling;
  // The command line samples a little conservatively by default; the library
  // (and the JSON options) default to the model's own distribution.
  s.temperature = 0.8f;
  s.top_p = 0.95f;
  o.max_new_tokens = for_chat ? 256 : 64;
  cmd.add_option("-n,--max-new-tokens", o.max_new_tokens, "most tokens to generate")
      ->default_val(o.max_new_tokens)
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--min-new-tokens", o.min_new_tokens, "no <|endoftext|> before this many tokens")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--greedy", s.greedy, "always pick the most likely token (no sampling)");
  cmd.add_option("--temperature", s.temperature, "sampling temperature (0: greedy)")
      ->default_val(0.8)
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-k", s.top_k, "sample from the k most likely tokens (0: all)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", s.top_p, "sample from the smallest set with this much probability")
      ->default_val(0.95)
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--min-p", s.min_p, "drop tokens less likely than this times the most likely one")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--typical-p", s.typical_p, "locally typical sampling mass (1: off)")->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--repetition-penalty", s.repetition_penalty,
                 "Hugging Face's: logits of tokens already in prompt or output divided (>0) or multiplied (<0) by it");
  cmd.add_option("--presence-penalty", s.presence_penalty,
                 "OpenAI's: subtracted once from the logit of every token already generated");
  cmd.add_option("--frequency-penalty", s.frequency_penalty,
                 "OpenAI's: subtracted per earlier occurrence in the output");
  cmd.add_option("--no-repeat-ngram", s.no_repeat_ngram_size, "never repeat an n-gram of this size")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--logit-bias", logit_bias, "ID:BIAS,... added to those tokens' logits (-inf bans)");
  cmd.add_option("--ban", ban, "comma-separated words never to generate, however tokenized");
  cmd.add_flag("--ignore-eos", ignore_eos, "keep generating past <|endoftext|>");
  cmd.add_option("--seed", o.seed, "random seed: the same seed gives the same text");
  cmd.add_option("--truncate", truncate, "left: keep the end of a prompt too long for the context");
  if (for_chat) return;
  cmd.add_option("--stop", stop, "stop before this text (repeatable; \\n, \\t understood)")->allow_extra_args(false);
  cmd.add_option("--num-return-sequences", o.num_return_sequences, "sequences to return (share the prompt's cache)")
      ->check(CLI::PositiveNumber);
  cmd.add_flag("--logprobs", o.logprobs, "per-token log-probabilities in the JSON");
  cmd.add_option("--top-logprobs", o.top_logprobs, "and the K most likely alternatives at each step")
      ->check(CLI::Range(0, 20));
  cmd.add_option("--beams", o.num_beams, "beam search with this many beams (Hugging Face's num_beams)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--length-penalty", o.length_penalty, "beam search: score = sum of log-probs / length^this");
  cmd.add_flag("--early-stopping{true}", early_stopping,
               "beam search: stop when num_beams hypotheses are finished (=never: the canonical rule)");
  cmd.add_option("--draft-tokens", o.draft_tokens, "speculative decoding: tokens drafted per step")
      ->check(CLI::Range(1, 32));
}

GenerateOptions GenerationFlags::resolve() const {
  GenerateOptions o = options;
  o.stop_at_eos = !ignore_eos;
  for (const std::string& s : stop) o.stop.push_back(unescape(s));
  if (!logit_bias.empty()) {
    for (const std::string& item : split_commas(logit_bias)) {
      const auto colon = item.find(':');
      const std::string id = trim(item.substr(0, colon));
      const std::string value = colon == std::string::npos ? "" : trim(item.substr(colon + 1));
      size_t used_id = 0, used_value = 0;
      long long tid = -1;
      float bias = 0;
      try {
        tid = std::stoll(id, &used_id);
        bias = std::stof(value, &used_value);
      } catch (const std::exception&) {
        used_id = 0;
      }
      if (colon == std::string::npos || used_id == 0 || used_id != id.size() || used_value != value.size() ||
          tid < 0 || tid > std::numeric_limits<TokenId>::max())
        throw Error(fmt::format("--logit-bias: \"{}\" is not ID:BIAS (e.g. 50256:-inf)", item));
      o.sampling.logit_bias[static_cast<TokenId>(tid)] = bias;
    }
  }
  if (!ban.empty())
    for (const std::string& w : split_commas(ban)) {
      const std::string word = trim(w);
      if (!word.empty()) o.sampling.banned_words.push_back(word);
    }
  if (early_stopping == "true" || early_stopping == "1") o.early_stopping = EarlyStopping::Always;
  else if (early_stopping == "never") o.early_stopping = EarlyStopping::Never;
  else if (early_stopping.empty() || early_stopping == "false" || early_stopping == "0")
    o.early_stopping = EarlyStopping::Heuristic;
  else throw Error(fmt::format("--early-stopping={}: expected true, false or never", early_stopping));
  if (truncate == "left") o.truncation = Truncation::Left;
  else if (truncate.empty() || truncate == "none") o.truncation = Truncation::Error;
  else throw Error(fmt::format("--truncate {}: expected left or none", truncate));
  o.validate();
  return o;
}

}  // namespace gptneo::cli
