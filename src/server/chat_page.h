// The chat page served at "/": one self-contained HTML file (no external
// scripts, styles or fonts) that streams replies from /v1/chat/completions.
#pragma once

#include <string_view>

namespace gptneo::server {

std::string_view chat_page_html();

}  // namespace gptneo::server
