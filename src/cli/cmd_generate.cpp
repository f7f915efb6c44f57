// gptneo generate: continue a prompt, streaming the text as it is made.
#include <cstdio>

#include <fmt/format.h>

#include "cli/common.h"
#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "models/architecture.h"

namespace gptneo::cli {

namespace {

struct GenerateArgs {
  ModelOptions model;
  std::string prompt;
  std::string prompt_ids;
  int64_t max_new_tokens = 64;
  bool greedy = false;
  bool json = false;
  bool ignore_eos = false;
  float temperature = 0.8f;
  int top_k = 0;
  float top_p = 0.95f;
  std::optional<uint64_t> seed;
};

void run_generate(const GenerateArgs& args) {
  const bool need_tokenizer = args.prompt_ids.empty() || !args.json;
  std::optional<Tokenizer> tok;
  if (need_tokenizer || args.model.has_tokenizer()) tok.emplace(args.model.load_tokenizer());
  std::unique_ptr<Model> model = args.model.load_model();

  std::vector<TokenId> prompt;
  if (!args.prompt_ids.empty()) {
    prompt = parse_ids(args.prompt_ids);
  } else {
    prompt = tok->encode(args.prompt);
    // An empty prompt starts from the beginning-of-text token, as GPT-2 did.
    if (prompt.empty()) prompt.push_back(model->config().bos_token_id >= 0 ? model->config().bos_token_id : tok->eos_id());
  }

  GenerateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  options.sampling.greedy = args.greedy;
  options.sampling.temperature = args.temperature;
  options.sampling.top_k = args.top_k;
  options.sampling.top_p = args.top_p;
  options.seed = args.seed;
  options.stop_at_eos = !args.ignore_eos;
  // Without a tokenizer, padding ids past the GPT-2 vocabulary (GPT-J) are still never emitted.
  options.sample_vocab = tok ? tok->vocab_size() : generation_vocab_size(model->config());

  const TokenId eos = model->config().eos_token_id;
  std::optional<StreamDecoder> stream;
  if (!args.json) stream.emplace(*tok);
  GenerateResult result = generate(*model, prompt, options, [&](TokenId id) {
    if (stream && !(id == eos && options.stop_at_eos)) {
      const std::string piece = stream->push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });

  if (args.json) {
    std::vector<TokenId> text_ids = result.tokens;
    if (result.finish_reason == "eos" && !text_ids.empty()) text_ids.pop_back();
    nlohmann::json j;
    j["text"] = tok ? tok->decode(text_ids) : "";
    j["tokens"] = result.tokens;
    j["prompt_tokens"] = prompt;
    j["finish_reason"] = result.finish_reason;
    j["seed"] = result.seed;
    print_json(j);
  } else {
    print_text(stream->flush());
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text to stdout");
  args->model.add_to(*cmd);
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "the prompt text");
  auto* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "the prompt as token ids, e.g. 1,2,3");
  p->excludes(ids);
  cmd->add_option("-n,--max-new-tokens", args->max_new_tokens, "tokens to generate")->default_val(64)->check(CLI::NonNegativeNumber);
  cmd->add_flag("--greedy", args->greedy, "always pick the most likely token (no sampling)");
  cmd->add_option("--temperature", args->temperature, "sampling temperature (0: greedy)")->default_val(0.8)->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", args->top_k, "sample from the k most likely tokens (0: all)")->default_val(0)->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->top_p, "sample from the smallest set with this much probability")->default_val(0.95)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", args->seed, "random seed: the same seed gives the same text");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "keep generating past <|endoftext|>");
  cmd->add_flag("--json", args->json, "print one JSON object {text, tokens, prompt_tokens, ...} instead");
  cmd->callback([args] {
    if (args->prompt.empty() && args->prompt_ids.empty())
      throw Error("give a prompt: -p TEXT or --prompt-ids 1,2,3");
    run_generate(*args);
  });
}

}  // namespace gptneo::cli
