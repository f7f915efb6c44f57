// gptneo::Server: the HTTP layer (cpp-httplib) over the scheduler. Routes,
// authentication, errors in OpenAI's shape, one log line per request, and
// the graceful shutdown.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "gptneo/error.h"
#include "gptneo/server.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "server/chat_page.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/response_builder.h"
#include "server/response_stream.h"
#include "server/scheduler.h"

namespace gptneo {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// httplib keeps the listening socket protected; the graceful shutdown needs
// it to stop accepting while in-flight answers go on.
class HttpServer : public httplib::Server {
 public:
  int listen_socket() const { return svr_sock_; }
};

// What the log line of the request being answered on this thread needs
// (httplib runs a request's handler, content provider and logger on one thread).
struct RequestLog {
  Clock::time_point start;
  std::shared_ptr<server::ResponseStream> stream;
};
thread_local RequestLog t_log;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(server::dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const server::ApiError& e) {
  send_json(res, e.status, server::error_body(e));
  if (e.retry_after_seconds > 0) res.set_header("Retry-After", std::to_string(e.retry_after_seconds));
}

bool needs_key(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* status_message(int status) {
  switch (status) {
    case 400: return "the request is malformed";
    case 404: return "no such endpoint";
    case 405: return "method not allowed";
    case 413: return "the request body is too large";
    case 414: return "the request URI is too long";
    default: return status >= 500 ? "internal server error" : "the request failed";
  }
}

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  HttpServer http;
  server::Metrics metrics;
  int port = -1;
  std::atomic<bool> bound{false};
  std::atomic<bool> draining{false};
  std::atomic<bool> shutting_down{false};

  // Set once by set_model, then read-only; `ready` publishes them.
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  std::string model_name;
  std::unique_ptr<server::Scheduler> scheduler;
  server::RequestLimits limits;
  std::atomic<bool> ready{false};

  explicit Impl(ServerOptions o) : opt(std::move(o)) { setup(); }

  void setup();
  void log_request(const httplib::Request& req, const httplib::Response& res);
  void check_ready() const {
    if (!ready) {
      server::ApiError e(503, "the model is still loading; retry shortly", {}, "model_loading");
      e.retry_after_seconds = 1;
      throw e;
    }
  }
  // Runs a handler body, answering ApiError (and any other error) in OpenAI's shape.
  template <class F>
  void guarded(httplib::Response& res, F&& body) {
    try {
      body();
    } catch (const server::ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, server::ApiError(400, e.what()));
    } catch (const std::bad_alloc&) {
      send_error(res, server::ApiError(500, "out of memory"));
    } catch (const std::exception& e) {
      send_error(res, server::ApiError(500, fmt::format("internal error: {}", e.what())));
    }
  }
  void generate(const httplib::Request& req, httplib::Response& res, server::Endpoint endpoint);
  void tokenize(const httplib::Request& req, httplib::Response& res);
  void detokenize(const httplib::Request& req, httplib::Response& res);
  json model_object() const {
    return {{"id", model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "gptneo"},
            {"max_model_len", scheduler->context()}};
  }
};

void Server::Impl::setup() {
  // A client that closes its socket must not kill the server with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  const int threads = opt.http_threads > 0 ? opt.http_threads : opt.parallel + opt.queue_size + 16;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_read_timeout(opt.io_timeout_seconds, 0);
  http.set_write_timeout(opt.io_timeout_seconds, 0);
  http.set_keep_alive_max_count(1000);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_log = {Clock::now(), nullptr};
    if (draining) {
      res.set_header("Connection", "close");
      if (req.path == "/health") send_json(res, 503, {{"status", "shutting_down"}});
      else send_error(res, server::ApiError(503, "the server is shutting down", {}, "shutting_down"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!opt.api_key.empty() && needs_key(req.path) &&
        !server::constant_time_equal(server::bearer_token(req.get_header_value("Authorization")), opt.api_key)) {
      // The body is left unread: close the connection after the answer.
      res.set_header("Connection", "close");
      send_error(res, server::ApiError(401,
                                       "Incorrect or missing API key: send the header \"Authorization: Bearer <key>\"",
                                       {}, "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      // httplib limits a body by its Content-Length only: a chunked body
      // could grow without bound, so bodies must announce their length.
      res.set_header("Connection", "close");
      send_error(res, server::ApiError(411, "send the request body with a Content-Length (chunked bodies are not "
                                            "accepted)",
                                       {}, "length_required"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Errors httplib answers itself (unknown path, body too large, malformed request).
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = status_message(res.status);
    if (res.status == 404) message = fmt::format("no such endpoint: {} {}", req.method, req.path);
    if (res.status == 413) message = fmt::format("the request body is larger than {} bytes", opt.max_body_bytes);
    const char* code = res.status == 404 ? "not_found" : res.status == 413 ? "request_too_large" : "";
    send_json(res, res.status, server::error_body(res.status, message, {}, code));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, server::ApiError(500, fmt::format("internal error: {}", what)));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) { log_request(req, res); });

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = server::chat_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ready) send_json(res, 200, {{"status", "ok"}, {"model", model_name}});
    else send_json(res, 503, {{"status", "loading"}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      check_ready();
      send_json(res, 200, {{"object", "list"}, {"data", json::array({model_object()})}});
    });
  });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_ready();
      if (req.matches[1] != model_name)
        throw server::ApiError(404, fmt::format("The model `{}` does not exist", req.matches[1].str()), "model",
                               "model_not_found");
      send_json(res, 200, model_object());
    });
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, server::Endpoint::Completions);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, server::Endpoint::Chat);
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { tokenize(req, res); });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) { detokenize(req, res); });
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, server::Endpoint endpoint) {
  guarded(res, [&] {
    check_ready();
    const json body = server::parse_json_body(req.body);
    server::GenerationRequest r = endpoint == server::Endpoint::Chat
                                      ? server::parse_chat_request(body, *tokenizer, opt.chat_template, limits)
                                      : server::parse_completion_request(body, *tokenizer, limits);
    std::shared_ptr<server::Job> job = scheduler->submit(r);
    auto stream = std::make_shared<server::ResponseStream>(std::move(r), std::move(job), *tokenizer, model_name,
                                                           &metrics);
    t_log.stream = stream;
    if (std::string(stream->content_type()) == "text/event-stream") {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
    }
    res.status = 200;
    res.set_chunked_content_provider(
        stream->content_type(), [stream](size_t, httplib::DataSink& sink) { return stream->pump(sink); },
        [stream](bool success) { stream->release(success); });
  });
}

void Server::Impl::tokenize(const httplib::Request& req, httplib::Response& res) {
  guarded(res, [&] {
    check_ready();
    const json body = server::parse_json_body(req.body);
    std::optional<std::string> text;
    bool with_pieces = false;
    for (const auto& [key, v] : body.items()) {
      if (key == "prompt" || key == "text" || key == "content") {
        if (!v.is_string()) throw server::ApiError(400, fmt::format("\"{}\" must be a string", key), key);
        text = v.get<std::string>();
      } else if (key == "model") {
        if (v != model_name)
          throw server::ApiError(404, fmt::format("The model `{}` does not exist", v.dump()), "model",
                                 "model_not_found");
      } else if (key == "with_pieces") {
        if (!v.is_boolean()) throw server::ApiError(400, "\"with_pieces\" must be true or false", key);
        with_pieces = v.get<bool>();
      } else if (key != "add_special_tokens") {
        throw server::ApiError(400, fmt::format("Unrecognized request argument supplied: {}", key), key);
      }
    }
    if (!text) throw server::ApiError(400, "give the text as \"prompt\"", "prompt");
    const std::vector<TokenId> ids = tokenizer->encode(*text);
    json out = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", scheduler->context()}};
    if (with_pieces) {
      json pieces = json::array();
      for (TokenId id : ids) pieces.push_back(server::token_string(*tokenizer, id));
      out["pieces"] = std::move(pieces);
    }
    send_json(res, 200, out);
  });
}

void Server::Impl::detokenize(const httplib::Request& req, httplib::Response& res) {
  guarded(res, [&] {
    check_ready();
    const json body = server::parse_json_body(req.body);
    const auto it = body.find("tokens");
    if (it == body.end() || !it->is_array())
      throw server::ApiError(400, "give the token ids as \"tokens\": [...]", "tokens");
    std::vector<TokenId> ids;
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tokenizer->vocab_size())
        throw server::ApiError(400, fmt::format("{} is not a token id (0..{})", v.dump(), tokenizer->vocab_size() - 1),
                               "tokens");
      ids.push_back(v.get<TokenId>());
    }
    send_json(res, 200, {{"text", tokenizer->decode(ids)}});
  });
}

void Server::Impl::log_request(const httplib::Request& req, const httplib::Response& res) {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_log.start).count();
  metrics.count_request(req.path, res.status);
  std::string tokens;
  if (t_log.stream) {
    const server::GenerationTotals& t = t_log.stream->totals();
    tokens = fmt::format(" prompt_tokens={} cached_tokens={} generated_tokens={}{}", t.prompt_tokens,
                         t.cached_tokens, t.generated_tokens, t.cancelled ? " cancelled" : "");
    metrics.request_duration.observe(ms / 1000.0);
  }
  t_log.stream.reset();
  if (!opt.log_requests) return;
  // Paths are the client's: keep the line printable and short.
  std::string path = req.path.substr(0, 200);
  for (char& c : path)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  const std::string line = fmt::format("{} {} {} {} {}{} {:.1f}ms\n", utc_now(), req.remote_addr, req.method.substr(0, 16),
                                       path, res.status, tokens, ms);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// ---- the public face -------------------------------------------------------------

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() = default;

void Server::bind() {
  Impl& m = *impl_;
  if (m.opt.port == 0) {
    m.port = m.http.bind_to_any_port(m.opt.host);
  } else {
    m.port = m.http.bind_to_port(m.opt.host, m.opt.port) ? m.opt.port : -1;
  }
  if (m.port < 0)
    throw Error(fmt::format("cannot listen on {}:{} (address in use, or not an address of this machine)", m.opt.host,
                            m.opt.port));
  // httplib listens with a backlog of 5: let bursts of clients queue instead
  // of having their connections refused.
  ::listen(m.http.listen_socket(), 1024);
  m.bound = true;
}

int Server::port() const { return impl_->port; }

void Server::set_model(std::unique_ptr<Model> model, Tokenizer tokenizer, const std::string& name) {
  Impl& m = *impl_;
  if (m.ready) throw Error("Server::set_model: a model is already being served");
  m.model = std::move(model);
  m.tokenizer.emplace(std::move(tokenizer));
  m.model_name = name;
  server::SchedulerOptions s;
  s.parallel = m.opt.parallel;
  s.context = m.opt.context;
  s.kv_budget_bytes = m.opt.kv_budget_bytes;
  s.queue_size = m.opt.queue_size;
  s.prefill_tokens_per_step = m.opt.prefill_tokens_per_step;
  s.prompt_cache_bytes = m.opt.prompt_cache_bytes;
  m.scheduler = std::make_unique<server::Scheduler>(*m.model, *m.tokenizer, s, &m.metrics);
  m.limits.model_name = name;
  m.limits.context = m.scheduler->context();
  m.limits.max_n = std::min(m.opt.max_n, m.scheduler->options().parallel);
  m.limits.max_prompts = m.opt.max_prompts;
  m.metrics.set_model_loaded(true);
  m.ready = true;
}

void Server::serve() {
  if (!impl_->bound) throw Error("Server::serve: bind() first");
  if (impl_->shutting_down) return;
  impl_->http.listen_after_bind();
}

void Server::shutdown() {
  Impl& m = *impl_;
  if (m.shutting_down.exchange(true)) return;
  m.draining = true;
  // Accepting stops (httplib's accept loop ends and waits for the
  // connections it has); answers being written go on.
  if (m.bound) ::shutdown(m.http.listen_socket(), SHUT_RD);
  if (m.ready) {
    const auto timeout = std::chrono::duration<double>(m.opt.shutdown_timeout_seconds);
    m.scheduler->drain(Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout));
  }
}

}  // namespace gptneo
