// Writes a job's answer to the client as it is generated: SSE chunks, or
// one JSON body at the end. Runs on the thread answering the connection
// (httplib's content provider); notices a client that went away and
// cancels the job, which frees its batch slot at the next step.
#pragma once

#include <memory>
#include <string>

#include <httplib.h>

#include "server/job.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/response_builder.h"

namespace gptneo::server {

// Totals of one answered generation request, for its log line.
struct GenerationTotals {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t generated_tokens = 0;
  bool cancelled = false;
};

class ResponseStream {
 public:
  ResponseStream(GenerationRequest request, std::shared_ptr<Job> job, const Tokenizer& tokenizer,
                 const std::string& model_name, Metrics* metrics);

  // httplib's content provider: waits a little for the job, writes what is
  // new; false when the client is gone.
  bool pump(httplib::DataSink& sink);
  // httplib's releaser: called once the response is over (or abandoned).
  void release(bool success);

  const GenerationTotals& totals() const { return totals_; }
  const char* content_type() const { return request_.stream ? "text/event-stream" : "application/json"; }

 private:
  bool write(httplib::DataSink& sink, const std::string& data);
  void finish(httplib::DataSink& sink, const Job::Update& last);

  GenerationRequest request_;  // the builder refers to it
  std::shared_ptr<Job> job_;
  ResponseBuilder builder_;
  Metrics* metrics_;
  bool done_ = false;
  GenerationTotals totals_;
};

}  // namespace gptneo::server
