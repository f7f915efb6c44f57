// gptneo chat: a terminal conversation. Line editing and history come from
// GNU readline when it was found at build time and stdin is a terminal;
// otherwise lines are read from stdin as they come (pipes work too).
// Ctrl-C stops the reply being written, not the program; Ctrl-D or /quit
// ends the conversation.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#ifdef GPTNEO_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#include "cli/common.h"
#include "cli/generation_flags.h"
#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_interrupt(int) { g_interrupted = 1; }

// Ctrl-C sets a flag the reply loop checks; reads are restarted, not failed.
void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
}

class LineReader {
 public:
  LineReader() : terminal_(::isatty(STDIN_FILENO) != 0) {}
  bool terminal() const { return terminal_; }

  // Reads one line; false at the end of input.
  bool read(std::string& line) {
#ifdef GPTNEO_HAVE_READLINE
    if (terminal_) {
      char* text = ::readline("> ");
      if (!text) return false;
      line = text;
      std::free(text);
      if (!line.empty()) ::add_history(line.c_str());
      return true;
    }
#endif
    if (terminal_) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    return static_cast<bool>(std::getline(std::cin, line));
  }

 private:
  bool terminal_;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

struct ChatArgs {
  ModelOptions model;
  std::string system;
  std::string template_file;
  GenerationFlags flags;
};

// Runs the conversation's tokens through the model, reusing the cached
// prefix it shares with the previous turn; returns the logits of the last.
Logits prefill(Model& model, KVCache& cache, std::vector<TokenId>& cached, const std::vector<TokenId>& prompt) {
  size_t common = static_cast<size_t>(std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end()).first -
                                      cached.begin());
  common = std::min(common, prompt.size() - 1);  // the last token's logits are needed
  try {
    cache.truncate(static_cast<int64_t>(common));
  } catch (const Error&) {
    cache.clear();  // a local layer no longer holds those positions
    common = 0;
  }
  SequenceChunk chunk{&cache, std::span<const TokenId>(prompt).subspan(common), false};
  Logits logits = model.forward({&chunk, 1});
  cached = prompt;
  return logits;
}

void run_chat(const ChatArgs& args) {
  GenerateOptions options = args.flags.resolve();
  const ChatTemplate chat = args.template_file.empty() ? ChatTemplate{} : ChatTemplate::load(args.template_file);
  options.stop.insert(options.stop.end(), chat.stop.begin(), chat.stop.end());
  const Tokenizer tok = args.model.load_tokenizer();
  std::unique_ptr<Model> model = args.model.load_model();
  const DecodeContext ctx = decode_context(*model, &tok, options);
  const int64_t context = model->config().max_positions;
  // Room for the reply: the conversation gets the rest of the context.
  const int64_t budget = context - std::min(options.max_new_tokens, context / 2);
  const uint64_t seed = options.seed.value_or(random_seed());

  std::vector<ChatMessage> messages;
  if (!args.system.empty()) messages.push_back({"system", args.system});
  LineReader reader;
  install_interrupt_handler();
  if (reader.terminal())
    std::fprintf(stderr, "gptneo chat (%s). Ctrl-C stops a reply; /reset forgets the conversation; Ctrl-D or /quit "
                         "ends.\n",
                 model->describe().c_str());

  KVCache cache = model->new_cache(0);
  std::vector<TokenId> cached;  // the tokens whose keys and values the cache holds
  std::string line;
  for (int turn = 0; reader.read(line); ++turn) {
    const std::string text = trim(line);
    if (text.empty()) continue;
    if (text == "/quit" || text == "/exit") break;
    if (text == "/reset") {
      messages.resize(args.system.empty() ? 0 : 1);
      continue;
    }
    messages.push_back({"user", text});
    int dropped = 0;
    const std::vector<TokenId> prompt = fit_chat(chat, tok, messages, budget, &dropped);
    if (dropped > 0)
      std::fprintf(stderr, "gptneo: the conversation is longer than the context: the oldest %d messages are left out\n",
                   dropped);

    SequenceDecoder decoder(options, ctx, prompt, choice_seed(seed, turn));
    Logits logits = prefill(*model, cache, cached, prompt);
    g_interrupted = 0;
    // The reply is shown as it is stored (ChatTemplate::clean_reply): white
    // space at its start is skipped, white space at its end held back until
    // more text follows.
    bool started = false;
    std::string blank;
    auto print = [&](const std::string& piece) {
      for (char c : piece) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (started) blank += c;
          continue;
        }
        started = true;
        std::fwrite(blank.data(), 1, blank.size(), stdout);
        blank.clear();
        std::fputc(c, stdout);
      }
      std::fflush(stdout);
    };
    while (!decoder.finished()) {
      const auto step = decoder.step({logits.row(0), static_cast<size_t>(logits.vocab)});
      print(step.text);
      if (decoder.finished()) break;
      if (g_interrupted) {
        print(decoder.cancel());
        break;
      }
      SequenceChunk chunk{&cache, {&decoder.tokens().back(), 1}, false};
      logits = model->forward({&chunk, 1});
      cached.push_back(decoder.tokens().back());
    }
    std::fputs(reader.terminal() ? "\n\n" : "\n", stdout);
    std::fflush(stdout);
    messages.push_back({"assistant", ChatTemplate::clean_reply(decoder.choice().text)});
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "Talk with a model in the terminal (one message per line)");
  args->model.add_to(*cmd);
  cmd->add_option("--system", args->system, "a system message that opens the conversation");
  cmd->add_option("--template", args->template_file,
                  "chat template JSON: system, user, assistant, generation_prompt, stop (see docs/generation.md)");
  args->flags.add_to(*cmd, true);
  cmd->callback([args] { run_chat(*args); });
}

}  // namespace gptneo::cli
