// An error answered to an HTTP client in OpenAI's shape:
//   {"error": {"message": "...", "type": "...", "param": "...", "code": "..."}}
// Thrown by request parsing and admission; the HTTP layer turns it into the
// response with its status code.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gptneo/error.h"

namespace gptneo::server {

struct ApiError : Error {
  int status = 400;
  std::string type;   // "invalid_request_error", "rate_limit_error", "server_error"
  std::string param;  // the request field at fault, empty: none
  std::string code;   // machine-readable reason, empty: none
  int retry_after_seconds = 0;  // 429: the Retry-After header

  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {});
};

// The error type OpenAI uses for a status code.
const char* error_type_for_status(int status);
// The JSON body of an error response.
nlohmann::json error_body(int status, const std::string& message, const std::string& param = {},
                          const std::string& code = {});
nlohmann::json error_body(const ApiError& e);

}  // namespace gptneo::server
