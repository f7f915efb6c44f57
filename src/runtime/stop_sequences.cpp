// TextStreamer: stop sequences across token boundaries, and holding back
// text that is not yet decided while streaming.
#include <algorithm>

#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo {

TextStreamer::TextStreamer(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : tok_(&tokenizer), stop_(std::move(stop)) {
  for (const std::string& s : stop_) {
    if (s.empty()) throw Error("a stop sequence is empty");
    longest_stop_ = std::max(longest_stop_, s.size());
  }
}

std::string TextStreamer::push(TokenId id) { return push_bytes(tok_->token_bytes(id)); }

std::string TextStreamer::push_bytes(std::string_view bytes) {
  if (stopped_) return {};
  const size_t old = text_.size();
  text_ += bytes;
  // A new occurrence ends after `old`, so it starts at most longest-1 bytes before it.
  const size_t from = old + 1 > longest_stop_ ? old + 1 - longest_stop_ : 0;
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) cut = std::min(cut, text_.find(s, from));
  if (cut != std::string::npos) {
    // Bytes that could begin a stop sequence were never released, so the
    // released text ends at or before the cut.
    text_.resize(cut);
    stopped_ = true;
    std::string out = text_.substr(std::min(released_, cut));
    released_ = cut;
    return out;
  }
  // Hold back the longest end of the text that is the start of a stop sequence.
  size_t hold = 0;
  for (const std::string& s : stop_)
    for (size_t l = std::min(s.size() - 1, text_.size()); l > hold; --l)
      if (text_.compare(text_.size() - l, l, s, 0, l) == 0) {
        hold = l;
        break;
      }
  size_t safe = std::max(released_, text_.size() - hold);
  // And the bytes of a UTF-8 character not yet complete.
  safe = released_ + utf8_complete_prefix(std::string_view(text_).substr(released_, safe - released_));
  std::string out = text_.substr(released_, safe - released_);
  released_ = safe;
  return out;
}

std::string TextStreamer::flush() {
  std::string out = text_.substr(std::min(released_, text_.size()));
  released_ = text_.size();
  return out;
}

}  // namespace gptneo
