// gptneo::Server over real HTTP on a loopback port: the endpoints, OpenAI's
// error shapes (400/401/404/411/413/429), streaming with [DONE], a client that
// goes away, and the graceful shutdown. The clients are cpp-httplib's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "gptneo/server.h"
#include "test_support.h"

namespace gptneo {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A server on a free loopback port, serving in a thread of its own.
class RunningServer {
 public:
  // `long_context`: a random-weight model of neo-tiny's shapes with 4096
  // positions instead of 128, for requests that must still be running
  // when the test acts (no timing assumptions: 4000 tokens take seconds).
  explicit RunningServer(ServerOptions o, bool load = true, bool long_context = false) : server_(prepare(o)) {
    server_.bind();
    thread_ = std::thread([this] { server_.serve(); });
    if (load) load_model(long_context);
  }
  ~RunningServer() { stop(); }

  void load_model(bool long_context = false) {
    std::unique_ptr<Model> model;
    if (long_context) {
      ModelConfig c = ModelConfig::load(test::neo_tiny_dir());
      c.max_positions = 4096;
      model = Model::random(c);
    } else {
      model = Model::load(test::neo_tiny_dir());
    }
    server_.set_model(std::move(model), Tokenizer::load(test::tokenizer_dir()), "neo-tiny");
  }
  void stop() {
    if (!thread_.joinable()) return;
    server_.shutdown();
    thread_.join();
  }
  Server& server() { return server_; }
  bool serving() const { return thread_.joinable(); }
  std::unique_ptr<httplib::Client> client(const std::string& key = "") const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_.port());
    c->set_read_timeout(60, 0);
    if (!key.empty()) c->set_bearer_token_auth(key);
    return c;
  }

 private:
  static ServerOptions prepare(ServerOptions& o) {
    o.port = 0;
    o.log_requests = false;
    return o;
  }
  Server server_;
  std::thread thread_;
};

json body_of(const httplib::Result& r) { return json::parse(r->body); }

// An error response in OpenAI's shape with this status.
void expect_error(const httplib::Result& r, int status, const std::string& code = "") {
  ASSERT_TRUE(r) << "no response (" << httplib::to_string(r.error()) << "), expected " << status;
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string());
  const char* type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
  EXPECT_EQ(e["type"], type);
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r->body;
  }
}

httplib::Result post(httplib::Client& c, const std::string& path, const json& body) {
  return c.Post(path, body.dump(), "application/json");
}

// A POST whose answer is handed to `receive` as it arrives (false: hang up).
httplib::Result post_streaming(httplib::Client& c, const std::string& path, const json& body,
                               std::function<bool(const char*, size_t)> receive) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [receive](const char* data, size_t n, uint64_t, uint64_t) { return receive(data, n); };
  return c.send(req);
}

// The data of each "data: ..." event of an SSE body; checks the framing.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "an event does not end with a blank line: " << body.substr(pos);
      break;
    }
    const std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

// A metric's value in /metrics (-1 when absent).
double metric(httplib::Client& c, const std::string& name) {
  const auto r = c.Get("/metrics");
  if (!r) return -1;
  const std::string key = "\n" + name + " ";
  const size_t at = r->body.find(key);
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + key.size()));
}

// Waits until a metric reaches `value` (fails after a minute).
void wait_for(httplib::Client& c, const std::string& name, double value) {
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (metric(c, name) != value) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << name << " never became " << value;
    std::this_thread::sleep_for(5ms);
  }
}

// Sends `request` on a new connection in one write and returns what comes
// back until the server closes or 2 s pass.
std::string raw_exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
      got.append(buf, static_cast<size_t>(n));
      if (got.find("}}") != std::string::npos) break;  // the first answer's JSON body is complete
    }
  }
  ::close(fd);
  return got;
}

json completion(int64_t max_tokens, bool stream = false) {
  return {{"model", "neo-tiny"}, {"prompt", "Once upon a time"}, {"max_tokens", max_tokens},
          {"temperature", 0},    {"ignore_eos", true},            {"stream", stream}};
}

TEST(ServerHttp, HealthIsUnavailableUntilTheModelIsServed) {
  RunningServer s({}, /*load=*/false);
  auto c = s.client();
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  expect_error(post(*c, "/v1/completions", completion(1)), 503, "model_loading");
  s.load_model();
  health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(body_of(models)["data"][0]["id"], "neo-tiny");
  const auto page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_EQ(metric(*c, "gptneo_model_loaded"), 1);
}

TEST(ServerHttp, CompletionsStreamedAndNotAgree) {
  RunningServer s({});
  auto c = s.client();
  const auto whole = post(*c, "/v1/completions", completion(6));
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  const json w = body_of(whole);
  EXPECT_EQ(w["object"], "text_completion");
  EXPECT_EQ(w["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(w["usage"]["completion_tokens"], 6);
  EXPECT_EQ(w["usage"]["prompt_tokens"], 4);

  const auto streamed = post(*c, "/v1/completions", completion(6, true));
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  const std::vector<std::string> events = sse_data(streamed->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) text += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, w["choices"][0]["text"]);
}

TEST(ServerHttp, ChatCompletionsAndTokenizing) {
  RunningServer s({});
  auto c = s.client();
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Hello!"}}}}, {"max_tokens", 4}, {"seed", 1}};
  const auto r = post(*c, "/v1/chat/completions", chat);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_of(r)["object"], "chat.completion");
  EXPECT_EQ(body_of(r)["choices"][0]["message"]["role"], "assistant");
  json streaming = chat;
  streaming["stream"] = true;
  const auto st = post(*c, "/v1/chat/completions", streaming);
  ASSERT_TRUE(st);
  const std::vector<std::string> events = sse_data(st->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(json::parse(events[0])["object"], "chat.completion.chunk");
  EXPECT_EQ(events.back(), "[DONE]");

  const auto tok = post(*c, "/tokenize", {{"prompt", "Hello world"}});
  ASSERT_TRUE(tok);
  ASSERT_EQ(tok->status, 200) << tok->body;
  const json ids = body_of(tok)["tokens"];
  EXPECT_EQ(ids.size(), 2u);
  const auto detok = post(*c, "/detokenize", {{"tokens", ids}});
  ASSERT_TRUE(detok);
  EXPECT_EQ(body_of(detok)["text"], "Hello world");
}

TEST(ServerHttp, BadRequestsGetOpenAIErrorsAndTheServerGoesOn) {
  ServerOptions o;
  o.max_body_bytes = 4096;
  RunningServer s(o);
  auto c = s.client();
  expect_error(c->Post("/v1/completions", "{\"prompt\": ", "application/json"), 400, "invalid_json");
  expect_error(c->Post("/v1/completions", "{\"prompt\": \"\xff\xfe\"}", "application/json"), 400, "invalid_utf8");
  expect_error(post(*c, "/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 404, "model_not_found");
  expect_error(post(*c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", -1}}), 400);
  expect_error(post(*c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 500}}), 400, "context_length_exceeded");
  expect_error(post(*c, "/v1/completions", {{"prompt", 5}}), 400);
  expect_error(post(*c, "/v1/completions", {{"prompt", "x"}, {"n", 1000}}), 400);
  expect_error(c->Post("/v1/completions", std::string(10000, ' '), "application/json"), 413, "request_too_large");
  expect_error(c->Get("/v1/nothing"), 404, "not_found");
  // A chunked body has no length to check before reading it: refused. (Sent
  // in one piece on a raw socket: the answer comes before the body is read.)
  const std::string answer = raw_exchange(s.server().port(),
                                          "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n13\r\n{\"prompt\": \"Hello\"}\r\n0\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 411 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("\"length_required\""), std::string::npos) << answer;
  const auto ok = post(*c, "/v1/completions", completion(2));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerHttp, AnApiKeyIsRequiredWhereSet) {
  ServerOptions o;
  o.api_key = "sk-test-key";
  RunningServer s(o);
  auto anonymous = s.client();
  expect_error(post(*anonymous, "/v1/completions", completion(1)), 401, "invalid_api_key");
  expect_error(s.client("sk-test-kez")->Get("/v1/models"), 401, "invalid_api_key");
  const auto health = anonymous->Get("/health");  // probes need no key
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const auto ok = post(*s.client("sk-test-key"), "/v1/completions", completion(1));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST(ServerHttp, AFullQueueAnswers429WithRetryAfter) {
  ServerOptions o;
  o.parallel = 1;
  o.queue_size = 1;
  o.shutdown_timeout_seconds = 0;  // the long requests are cancelled at the end
  RunningServer s(o, true, /*long_context=*/true);
  auto c = s.client();
  // One request runs, one waits: any more is turned away.
  std::vector<std::thread> clients;
  auto start_client = [&] {
    clients.emplace_back([&] {
      const auto r = post(*s.client(), "/v1/completions", completion(4000));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(body_of(r)["choices"][0]["finish_reason"], "cancelled");
    });
  };
  start_client();
  wait_for(*c, "gptneo_running_requests", 1);
  start_client();
  wait_for(*c, "gptneo_queue_length", 1);
  const auto r = post(*c, "/v1/completions", completion(1));
  expect_error(r, 429, "queue_full");
  ASSERT_TRUE(r);
  EXPECT_GE(std::stoi(r->get_header_value("Retry-After")), 1);
  s.stop();
  for (auto& t : clients) t.join();
}

TEST(ServerHttp, AClientThatGoesAwayFreesItsSlot) {
  ServerOptions o;
  o.parallel = 1;
  RunningServer s(o, true, /*long_context=*/true);
  auto c = s.client();
  const json body = completion(4000, true);
  int chunks = 0;
  // Reading stops after the first chunk: the client closes the connection.
  auto r = post_streaming(*c, "/v1/completions", body, [&](const char*, size_t) { return ++chunks < 1; });
  EXPECT_FALSE(r);
  auto probe = s.client();
  wait_for(*probe, "gptneo_requests_cancelled_total", 1);
  wait_for(*probe, "gptneo_active_sequences", 0);
  EXPECT_LT(metric(*probe, "gptneo_generated_tokens_total"), 4000);
  const auto next = post(*probe, "/v1/completions", completion(3));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(ServerHttp, ShutdownLetsInFlightRequestsFinish) {
  RunningServer s({}, true, /*long_context=*/true);
  std::string body;
  std::atomic<bool> started{false};
  std::thread client([&] {
    auto c = s.client();
    auto r = post_streaming(*c, "/v1/completions", completion(300, true), [&](const char* data, size_t n) {
                       body.append(data, n);
                       started = true;
                       return true;
                     });
    EXPECT_TRUE(r);
  });
  while (!started) std::this_thread::sleep_for(1ms);
  s.stop();  // returns once the answer is written
  client.join();
  const std::vector<std::string> events = sse_data(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(s.client()->Get("/health")) << "still accepting connections after shutdown";
}

TEST(ServerHttp, ShutdownCancelsWhatOutlivesTheDeadline) {
  ServerOptions o;
  o.shutdown_timeout_seconds = 0;
  RunningServer s(o, true, /*long_context=*/true);
  std::string body;
  std::atomic<bool> started{false};
  std::thread client([&] {
    auto r = post_streaming(*s.client(), "/v1/completions", completion(4000, true), [&](const char* data, size_t n) {
                                body.append(data, n);
                                started = true;
                                return true;
                              });
    EXPECT_TRUE(r);
  });
  while (!started) std::this_thread::sleep_for(1ms);
  s.stop();
  client.join();
  const std::vector<std::string> events = sse_data(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "cancelled");
}

}  // namespace
}  // namespace gptneo
