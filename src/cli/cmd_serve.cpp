// gptneo serve: the OpenAI-compatible HTTP server (docs/server.md).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "cli/common.h"
#include "gptneo/error.h"
#include "gptneo/server.h"

namespace gptneo::cli {

namespace {

struct ServeArgs {
  ModelOptions model;
  ServerOptions server;
  std::string model_name;
  std::string chat_template;
  double kv_budget_mb = 0;
  double prompt_cache_mb = 64;
  double max_body_kb = 1024;
  bool quiet_log = false;
};

std::string default_model_name(const std::filesystem::path& dir) {
  const std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  std::string name = p.filename().string();
  if (name.empty()) name = p.parent_path().filename().string();
  return name.empty() ? "gptneo" : name;
}

void log_line(const std::string& s) {
  const std::string line = "gptneo serve: " + s + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void run_serve(ServeArgs& a) {
  ServerOptions& o = a.server;
  if (const char* key = std::getenv("GPTNEO_API_KEY"); key && *key && o.api_key.empty()) o.api_key = key;
  if (!a.chat_template.empty()) o.chat_template = ChatTemplate::load(a.chat_template);
  if (a.kv_budget_mb < 0 || a.prompt_cache_mb < 0 || a.max_body_kb <= 0)
    throw Error("--kv-budget-mb and --prompt-cache-mb must be >= 0, --max-body-kb > 0");
  o.kv_budget_bytes = static_cast<size_t>(a.kv_budget_mb * 1048576.0);
  o.prompt_cache_bytes = static_cast<size_t>(a.prompt_cache_mb * 1048576.0);
  o.max_body_bytes = static_cast<size_t>(a.max_body_kb * 1024.0);
  o.log_requests = !a.quiet_log;
  if (o.parallel < 1) throw Error("--parallel must be at least 1");
  if (o.queue_size < 0) throw Error("--queue must be >= 0");
  if (o.prefill_tokens_per_step < 1) throw Error("--prefill-chunk must be at least 1");
  const std::filesystem::path dir = a.model.resolve_model_dir();
  const std::string name = a.model_name.empty() ? default_model_name(dir) : a.model_name;

  // SIGINT/SIGTERM go to one thread that shuts the server down gracefully
  // (every other thread, httplib's included, inherits the blocked mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Server server(o);
  server.bind();
  log_line(fmt::format("listening on http://{}:{} (loading {})", o.host, server.port(), dir.string()));
  std::thread serving([&] { server.serve(); });
  std::atomic<bool> loaded{false}, signalled{false};
  // The watcher ends once the shutdown it started has drained the server;
  // it is joined below, so nothing it uses goes away under it.
  std::thread watcher([&server, &loaded, &signalled, signals, timeout = o.shutdown_timeout_seconds] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!loaded) {
      log_line("stopped while loading the model");
      std::_Exit(0);
    }
    signalled = true;
    log_line(fmt::format("{}: no new requests; finishing those in flight (up to {} s)",
                         sig == SIGINT ? "SIGINT" : "SIGTERM", timeout));
    std::thread([signals] {
      int again = 0;
      sigwait(&signals, &again);
      log_line("second signal: exiting now");
      std::_Exit(1);
    }).detach();
    server.shutdown();
  });

  try {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<Model> model = a.model.load_model();
    Tokenizer tokenizer = a.model.load_tokenizer();
    const std::string desc = model->describe();
    server.set_model(std::move(model), std::move(tokenizer), name);
    loaded = true;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_line(fmt::format("ready in {:.1f} s: model \"{}\" ({}), {} slots", s, name, desc, o.parallel));
  } catch (...) {
    server.shutdown();
    serving.join();
    watcher.detach();  // blocked in sigwait; the process is about to exit
    throw;
  }
  serving.join();
  if (!signalled) {
    // serve() only returns after a shutdown; without one the listening socket failed.
    watcher.detach();
    throw Error("the listening socket failed; stopping");
  }
  watcher.join();
  log_line("stopped");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over HTTP with the OpenAI API (completions, chat)");
  a->model.add_to(*cmd);
  ServerOptions& o = a->server;
  cmd->add_option("--host", o.host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o.port, "port to listen on (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o.api_key,
                  "require \"Authorization: Bearer KEY\" on /v1/* and /(de)tokenize (also $GPTNEO_API_KEY)");
  cmd->add_option("--model-name", a->model_name, "the model's id in the API (default: the model folder's name)");
  cmd->add_option("--parallel", o.parallel, "most sequences decoded at once, in one batch (default 8)");
  cmd->add_option("--ctx", o.context, "positions of one sequence (default: the model's context)");
  cmd->add_option("--queue", o.queue_size, "prompts that may wait for a slot; more get 429 (default 64)");
  cmd->add_option("--kv-budget-mb", a->kv_budget_mb,
                  "KV-cache memory of running sequences (default: --parallel full-context caches)");
  cmd->add_option("--prefill-chunk", o.prefill_tokens_per_step,
                  "prompt tokens run per batched step, so long prompts never stall decoding (default 128)");
  cmd->add_option("--prompt-cache-mb", a->prompt_cache_mb, "memory of the prompt (prefix) cache; 0: off (default 64)");
  cmd->add_option("--max-body-kb", a->max_body_kb, "largest request body accepted, in KiB (default 1024)");
  cmd->add_option("--max-n", o.max_n, "most choices per prompt (n) (default 16)");
  cmd->add_option("--chat-template", a->chat_template, "chat template JSON file (default: docs/generation.md's)");
  cmd->add_option("--http-threads", o.http_threads, "connections served at once (default: parallel + queue + 16)");
  cmd->add_option("--timeout", o.io_timeout_seconds, "seconds a client may stall sending or reading (default 10)");
  cmd->add_option("--shutdown-timeout", o.shutdown_timeout_seconds,
                  "seconds in-flight requests get to finish on SIGINT/SIGTERM (default 30)");
  cmd->add_flag("--no-log", a->quiet_log, "no log line per request");
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace gptneo::cli
