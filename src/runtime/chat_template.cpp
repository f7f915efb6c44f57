// The chat template: a conversation as one prompt, and fitting it into the
// context by dropping the oldest turns.
#include <cctype>
#include <fstream>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo {

namespace {

std::string fill(const std::string& pattern, const std::string& content) {
  std::string out;
  size_t from = 0;
  for (size_t at = pattern.find("{content}"); at != std::string::npos; at = pattern.find("{content}", from)) {
    out.append(pattern, from, at - from);
    out += content;
    from = at + 9;
  }
  out.append(pattern, from);
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open the chat template {}", file.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("the chat template {} is not valid JSON: {}", file.string(), e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("the chat template {} must be a JSON object", file.string()));
  ChatTemplate t;
  for (const auto& [key, value] : j.items()) {
    auto text = [&]() {
      if (!value.is_string())
        throw Error(fmt::format("chat template {}: \"{}\" must be a string", file.string(), key));
      return value.get<std::string>();
    };
    if (key == "system") t.system = text();
    else if (key == "user") t.user = text();
    else if (key == "assistant") t.assistant = text();
    else if (key == "generation_prompt") t.generation_prompt = text();
    else if (key == "stop") {
      t.stop.clear();
      if (value.is_string()) t.stop.push_back(value.get<std::string>());
      else if (value.is_array())
        for (const auto& s : value) {
          if (!s.is_string() || s.get<std::string>().empty())
            throw Error(fmt::format("chat template {}: \"stop\" must hold non-empty strings", file.string()));
          t.stop.push_back(s.get<std::string>());
        }
      else
        throw Error(fmt::format("chat template {}: \"stop\" must be a string or a list of strings", file.string()));
    } else {
      throw Error(fmt::format("chat template {}: unknown field \"{}\" (expected system, user, assistant, "
                              "generation_prompt, stop)",
                              file.string(), key));
    }
  }
  for (const auto* role : {&t.system, &t.user, &t.assistant})
    if (role->find("{content}") == std::string::npos)
      throw Error(fmt::format("chat template {}: \"{}\" has no {{content}} placeholder", file.string(), *role));
  return t;
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") out += fill(system, m.content);
    else if (m.role == "user") out += fill(user, m.content);
    else if (m.role == "assistant") out += fill(assistant, m.content);
    else throw Error(fmt::format("unknown chat role \"{}\" (expected system, user or assistant)", m.role));
  }
  if (add_generation_prompt) out += generation_prompt;
  return out;
}

std::string ChatTemplate::clean_reply(std::string_view generated) {
  while (!generated.empty() && std::isspace(static_cast<unsigned char>(generated.front()))) generated.remove_prefix(1);
  while (!generated.empty() && std::isspace(static_cast<unsigned char>(generated.back()))) generated.remove_suffix(1);
  return std::string(generated);
}

std::vector<TokenId> fit_chat(const ChatTemplate& chat, const Tokenizer& tokenizer,
                              std::span<const ChatMessage> messages, int64_t budget, int* dropped) {
  if (messages.empty()) throw Error("the conversation is empty");
  const size_t first = messages.front().role == "system" ? 1 : 0;
  std::vector<ChatMessage> kept(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(first));
  // Start the kept turns at `from`, later and later, always at a user message
  // when there is one, until the prompt fits.
  for (size_t from = first; from < messages.size();) {
    std::vector<ChatMessage> m = kept;
    m.insert(m.end(), messages.begin() + static_cast<std::ptrdiff_t>(from), messages.end());
    std::vector<TokenId> ids = tokenizer.encode(chat.render(m));
    if (static_cast<int64_t>(ids.size()) <= budget) {
      if (dropped) *dropped = static_cast<int>(from - first);
      return ids;
    }
    if (from + 1 == messages.size()) {
      throw Error(fmt::format("the conversation does not fit the context: its last message alone needs {} tokens, "
                              "{} are available",
                              ids.size(), budget));
    }
    ++from;
    while (from + 1 < messages.size() && messages[from].role != "user") ++from;
  }
  throw Error("the conversation is empty");
}

}  // namespace gptneo
