// gptneo generate: continue a prompt, streaming the text as it is made; or
// run a file of prompts together (--batch-file).
#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/generation_flags.h"
#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo::cli {

namespace {

struct GenerateArgs {
  ModelOptions model;
  std::string prompt;
  std::string prompt_ids;
  std::string batch_file;
  std::string draft_model;
  GenerationFlags flags;
  bool json = false;
};

void warn_truncated(const GenerateResult& r, const std::string& where = "") {
  if (r.truncated_prompt_tokens > 0)
    std::fprintf(stderr, "gptneo: warning: %sthe prompt was too long: kept its last %lld tokens, dropped %lld\n",
                 where.c_str(), static_cast<long long>(r.prompt_tokens),
                 static_cast<long long>(r.truncated_prompt_tokens));
}

std::vector<TokenId> start_token_if_empty(std::vector<TokenId> prompt, const Model& model, const Tokenizer* tok) {
  // An empty prompt starts from the beginning-of-text token, as GPT-2 did.
  if (prompt.empty()) {
    const TokenId bos = model.config().bos_token_id;
    prompt.push_back(bos >= 0 ? bos : tok ? tok->eos_id() : model.config().eos_token_id);
  }
  return prompt;
}

// One JSON object per line: "prompt" (text) or "prompt_ids", any generation
// option, and an optional "id" echoed in the output line.
void run_batch(const GenerateArgs& args, Model& model, const Tokenizer* tok, const GenerateOptions& base) {
  std::ifstream in(args.batch_file, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open the batch file {}", args.batch_file));
  std::vector<GenerateRequest> requests;
  std::vector<nlohmann::json> ids;
  std::string line;
  const std::vector<std::string> keys = {"prompt", "prompt_ids", "id"};
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{} line {}", args.batch_file, number);
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (!j.is_object()) throw Error("not a JSON object");
      GenerateRequest r;
      r.options = base;
      apply_json_options(j, r.options, keys);
      r.options.validate();
      if (j.contains("prompt_ids")) {
        r.prompt = j["prompt_ids"].get<std::vector<TokenId>>();
      } else if (j.contains("prompt") && j["prompt"].is_string()) {
        if (!tok) throw Error("a text prompt needs a tokenizer (give prompt_ids, or --tokenizer)");
        r.prompt = tok->encode(j["prompt"].get<std::string>());
      } else {
        throw Error("no \"prompt\" (text) or \"prompt_ids\"");
      }
      r.prompt = start_token_if_empty(std::move(r.prompt), model, tok);
      if (r.options.num_beams == 1) fit_prompt(r.prompt, r.options, model.config().max_positions);
      ids.push_back(j.contains("id") ? j["id"] : nlohmann::json());
      requests.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}: {}", where, e.what()));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", where, e.what()));
    }
  }
  const std::vector<GenerateResult> results = generate_batch(model, tok, requests);
  for (size_t i = 0; i < results.size(); ++i) {
    warn_truncated(results[i], fmt::format("request {}: ", i + 1));
    nlohmann::json j = result_to_json(results[i], requests[i].prompt, tok, requests[i].options);
    if (!ids[i].is_null()) j["id"] = ids[i];
    print_json(j);
  }
}

void run_generate(const GenerateArgs& args) {
  const GenerateOptions options = args.flags.resolve();
  const bool text_prompt = args.prompt_ids.empty() && args.batch_file.empty();
  const bool need_tokenizer = text_prompt || !args.json || !options.stop.empty() ||
                              !options.sampling.banned_words.empty();
  std::optional<Tokenizer> tok;
  if (need_tokenizer || args.model.has_tokenizer()) tok.emplace(args.model.load_tokenizer());
  const Tokenizer* tp = tok ? &*tok : nullptr;
  std::unique_ptr<Model> model = args.model.load_model();
  std::unique_ptr<Model> draft;
  if (!args.draft_model.empty()) {
    ModelOptions d = args.model;
    d.model_dir = args.draft_model;
    draft = d.load_model();
  }
  if (!args.batch_file.empty()) {
    if (draft) throw Error("--draft-model and --batch-file cannot be combined");
    run_batch(args, *model, tp, options);
    return;
  }

  std::vector<TokenId> prompt = args.prompt_ids.empty() ? tok->encode(args.prompt) : parse_ids(args.prompt_ids);
  prompt = start_token_if_empty(std::move(prompt), *model, tp);

  // Text mode streams the one sequence as it is made; several sequences are
  // printed when all are done.
  const bool stream = !args.json && options.num_return_sequences == 1 && options.num_beams == 1;
  StreamCallback on_event;
  if (stream)
    on_event = [](const StreamEvent& e) {
      if (!e.text.empty()) {
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
      }
      return true;
    };
  const GenerateResult result = generate(*model, tp, prompt, options, on_event, draft.get());
  warn_truncated(result);
  if (args.json) {
    print_json(result_to_json(result, prompt, tp, options));
  } else if (stream) {
    print_text("");
  } else {
    for (size_t i = 0; i < result.choices.size(); ++i) {
      if (i > 0) std::fputs("\n---\n", stdout);
      std::fwrite(result.choices[i].text.data(), 1, result.choices[i].text.size(), stdout);
    }
    print_text("");
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text to stdout");
  args->model.add_to(*cmd);
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "the prompt text");
  auto* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "the prompt as token ids, e.g. 1,2,3");
  auto* batch = cmd->add_option("--batch-file", args->batch_file,
                                "JSON lines {\"prompt\": ..., options...}: run together, one JSON result per line");
  p->excludes(ids);
  batch->excludes(p)->excludes(ids);
  args->flags.add_to(*cmd);
  cmd->add_option("--draft-model", args->draft_model,
                  "speculative decoding: a small model with the same tokenizer drafts tokens");
  cmd->add_flag("--json", args->json, "print one JSON object {text, tokens, prompt_tokens, choices, ...} instead");
  cmd->callback([args] {
    if (args->prompt.empty() && args->prompt_ids.empty() && args->batch_file.empty())
      throw Error("give a prompt: -p TEXT, --prompt-ids 1,2,3 or --batch-file FILE");
    run_generate(*args);
  });
}

}  // namespace gptneo::cli
