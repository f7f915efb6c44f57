#include "server/response_stream.h"

#include <chrono>

#include "server/api_error.h"

namespace gptneo::server {

namespace {
// How often a waiting answer checks that its client is still there.
constexpr std::chrono::milliseconds kPoll{100};
}  // namespace

ResponseStream::ResponseStream(GenerationRequest request, std::shared_ptr<Job> job, const Tokenizer& tokenizer,
                               const std::string& model_name, Metrics* metrics)
    : request_(std::move(request)), job_(std::move(job)), builder_(request_, tokenizer, model_name),
      metrics_(metrics) {}

bool ResponseStream::write(httplib::DataSink& sink, const std::string& data) {
  if (sink.write(data.data(), data.size())) return true;
  job_->cancel();
  totals_.cancelled = true;
  return false;
}

bool ResponseStream::pump(httplib::DataSink& sink) {
  if (done_) return true;
  const Job::Update u = job_->wait(kPoll);
  if (!sink.is_writable()) {
    job_->cancel();
    totals_.cancelled = true;
    return false;
  }
  if (request_.stream) {
    for (const auto& chunk : builder_.chunks(u))
      if (!write(sink, sse_event(chunk))) return false;
  } else {
    builder_.add(u);
  }
  if (u.done) finish(sink, u);
  return !totals_.cancelled;
}

void ResponseStream::finish(httplib::DataSink& sink, const Job::Update& last) {
  done_ = true;
  totals_.prompt_tokens = job_->prompt_tokens();
  totals_.cached_tokens = job_->cached_tokens();
  totals_.generated_tokens = builder_.completion_tokens();
  std::string body;
  if (!last.error.empty()) {
    // The status line is long gone: the error travels in the body.
    const std::string e = dump_json(error_body(500, last.error, {}, "generation_failed"));
    body = request_.stream ? "data: " + e + "\n\n" + sse_done() : e;
  } else if (request_.stream) {
    if (request_.include_usage) body = sse_event(builder_.usage_chunk(*job_));
    body += sse_done();
  } else {
    body = dump_json(builder_.response(*job_));
  }
  if (write(sink, body)) sink.done();
}

void ResponseStream::release(bool success) {
  if (!done_) {
    // Abandoned before the end (client gone, write timeout): stop generating.
    job_->cancel();
    totals_.cancelled = true;
  }
  if (totals_.cancelled && metrics_) metrics_->count_cancelled();
}

}  // namespace gptneo::server
