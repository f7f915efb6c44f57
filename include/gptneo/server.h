// gptneo serve: an OpenAI-compatible HTTP server with continuous batching.
//
//   gptneo::ServerOptions o;
//   o.port = 8080;
//   gptneo::Server server(o);
//   server.bind();                               // listening; /health answers 503
//   std::thread t([&] { server.serve(); });
//   server.set_model(gptneo::Model::load(dir), gptneo::Tokenizer::load(dir), "neo-mini");
//   ...                                          // /health answers 200
//   server.shutdown();                           // drains, then serve() returns
//   t.join();
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (JSON or
// Server-Sent Events), GET /v1/models, GET /health, GET /metrics (Prometheus),
// POST /tokenize, POST /detokenize, and a chat page at "/". docs/server.md
// documents each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gptneo/generate.h"
#include "gptneo/model.h"
#include "gptneo/tokenizer.h"

namespace gptneo {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (see Server::port())
  // Non-empty: /v1/*, /tokenize and /detokenize need "Authorization: Bearer <key>".
  std::string api_key;
  int parallel = 8;                // most sequences decoded at once (batch slots)
  int64_t context = 0;             // positions of one sequence (0: the model's)
  size_t kv_budget_bytes = 0;      // KV memory of running sequences (0: `parallel` full-context caches)
  int queue_size = 64;             // prompts waiting for a slot; beyond: 429 with Retry-After
  int64_t prefill_tokens_per_step = 128;  // chunked prefill: prompt tokens per batched step
  size_t prompt_cache_bytes = 64u << 20;  // prompt (prefix) cache; 0: off
  size_t max_body_bytes = 1u << 20;       // larger request bodies get 413
  int max_n = 16;                  // most choices per prompt
  int max_prompts = 64;            // most prompts in one completions request
  int http_threads = 0;            // connections served at once (0: parallel + queue_size + 16)
  int io_timeout_seconds = 10;     // a client silent this long while sending or receiving is dropped
  double shutdown_timeout_seconds = 30;  // in-flight requests get this long to finish on shutdown
  bool log_requests = true;        // one line per request on stderr
  ChatTemplate chat_template;      // how /v1/chat/completions renders messages
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening socket; throws gptneo::Error when the address can
  // not be bound. Requests are answered once serve() runs.
  void bind();
  int port() const;
  // Starts serving `model` under `name` (the id of /v1/models): /health
  // turns from 503 to 200. Call once, from any thread.
  void set_model(std::unique_ptr<Model> model, Tokenizer tokenizer, const std::string& name);
  // Answers requests until shutdown() has drained them (blocks).
  void serve();
  // Graceful stop, from any thread (a signal handler's thread): stops
  // accepting connections, lets in-flight requests finish (up to
  // shutdown_timeout_seconds, then cancels them), then serve() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gptneo
