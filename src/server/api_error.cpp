#include "server/api_error.h"

namespace gptneo::server {

ApiError::ApiError(int status_, const std::string& message, std::string param_, std::string code_)
    : Error(message), status(status_), type(error_type_for_status(status_)), param(std::move(param_)),
      code(std::move(code_)) {}

const char* error_type_for_status(int status) {
  // As OpenAI answers: client mistakes (a bad key and an unknown model
  // included) are invalid_request_error.
  if (status == 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

nlohmann::json error_body(int status, const std::string& message, const std::string& param,
                          const std::string& code) {
  using nlohmann::json;
  return {{"error",
           {{"message", message},
            {"type", error_type_for_status(status)},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

nlohmann::json error_body(const ApiError& e) { return error_body(e.status, e.what(), e.param, e.code); }

}  // namespace gptneo::server
