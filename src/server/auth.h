// API-key checks for --api-key.
#pragma once

#include <string>
#include <string_view>

namespace gptneo::server {

// a == b in a time that depends only on their lengths' maximum, never on
// where they first differ (a key is not guessable byte by byte from timings).
bool constant_time_equal(std::string_view a, std::string_view b);
// The key of an "Authorization: Bearer <key>" header value ("" when it is
// not of that form).
std::string bearer_token(std::string_view authorization);

}  // namespace gptneo::server
