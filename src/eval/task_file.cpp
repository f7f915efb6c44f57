// Reading JSONL task files into examples, with an error naming the line and
// field of anything malformed.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/text.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"

namespace gptneo::eval {

namespace {

using nlohmann::json;

class Line {
 public:
  Line(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(fmt::format("{}: {}", where_, what)); }

  const json& field(const char* name) const {
    const auto it = j_.find(name);
    if (it == j_.end()) fail(fmt::format("missing field \"{}\"", name));
    return *it;
  }
  bool has(const char* name) const { return j_.contains(name); }

  std::string string(const char* name) const {
    const json& v = field(name);
    if (!v.is_string()) fail(fmt::format("field \"{}\" must be a string", name));
    return v.get<std::string>();
  }
  std::string string_or(const char* name, const std::string& fallback) const {
    return has(name) ? string(name) : fallback;
  }
  int64_t integer(const char* name) const {
    const json& v = field(name);
    if (!v.is_number_integer()) fail(fmt::format("field \"{}\" must be an integer", name));
    return v.get<int64_t>();
  }
  std::vector<std::string> strings(const char* name) const {
    const json& v = field(name);
    if (!v.is_array()) fail(fmt::format("field \"{}\" must be a list of strings", name));
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string()) fail(fmt::format("field \"{}\" must be a list of strings", name));
      out.push_back(e.get<std::string>());
    }
    return out;
  }

 private:
  const json& j_;
  std::string where_;
};

PerplexityDoc parse_doc(const Line& line) {
  PerplexityDoc d;
  d.text = line.string("text");
  d.words = line.has("words") ? line.integer("words") : python_word_count(d.text);
  d.bytes = line.has("bytes") ? line.integer("bytes") : static_cast<int64_t>(d.text.size());
  if (d.words < 1) line.fail("field \"words\" must be at least 1");
  if (d.bytes < 0) line.fail("field \"bytes\" must not be negative");
  return d;
}

int64_t parse_gold(const Line& line, size_t choices) {
  const int64_t gold = line.integer("gold");
  if (gold < 0 || gold >= static_cast<int64_t>(choices))
    line.fail(fmt::format("\"gold\" is {} but there are {} choices", gold, choices));
  return gold;
}

// Either {"context", "choices"} (one continuation per choice) or
// {"contexts", "continuation"} (one context per choice, Winogrande's shape).
ChoiceExample parse_choice(const Line& line, bool& shared_continuation) {
  const bool by_choice = line.has("choices"), by_context = line.has("contexts");
  if (by_choice == by_context)
    line.fail("a multiple_choice example needs either \"context\" + \"choices\" or \"contexts\" + \"continuation\"");
  const std::string delimiter = line.string_or("delimiter", " ");
  ChoiceExample ex;
  if (by_choice) {
    const std::string context = line.string("context");
    for (const std::string& choice : line.strings("choices")) {
      if (choice.empty()) line.fail("a choice is empty");
      ex.contexts.push_back(context);
      ex.continuations.push_back(delimiter + choice);
      // The harness normalises by len(choice): code points, delimiter excluded.
      ex.lengths.push_back(static_cast<double>(code_points(choice)));
      ex.byte_lengths.push_back(static_cast<double>(choice.size()));
    }
  } else {
    const std::string continuation = delimiter + line.string("continuation");
    if (continuation.empty()) line.fail("the continuation is empty");
    for (const std::string& context : line.strings("contexts")) {
      ex.contexts.push_back(context);
      ex.continuations.push_back(continuation);
      ex.lengths.push_back(static_cast<double>(code_points(context)));
      ex.byte_lengths.push_back(static_cast<double>(context.size()));
    }
  }
  if (ex.contexts.size() < 2) line.fail("a multiple_choice example needs at least 2 choices");
  ex.gold = parse_gold(line, ex.contexts.size());
  shared_continuation = by_context;
  return ex;
}

PairExample parse_pair(const Line& line) {
  PairExample p{line.string("more"), line.string("less"), line.string("category")};
  if (p.more.empty() || p.less.empty()) line.fail("\"more\" and \"less\" must not be empty");
  if (p.category.empty()) line.fail("\"category\" must not be empty");
  return p;
}

}  // namespace

std::string_view task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::Perplexity: return "perplexity";
    case TaskKind::Lambada: return "lambada";
    case TaskKind::MultipleChoice: return "multiple_choice";
    case TaskKind::Pairs: return "pairs";
  }
  return "?";
}

std::optional<TaskKind> task_kind_from_name(std::string_view name) {
  for (const TaskKind k : {TaskKind::Perplexity, TaskKind::Lambada, TaskKind::MultipleChoice, TaskKind::Pairs})
    if (task_kind_name(k) == name) return k;
  return std::nullopt;
}

int64_t Task::size() const {
  return static_cast<int64_t>(docs.size() + texts.size() + choices.size() + pairs.size());
}

Task parse_task(TaskKind kind, std::string_view jsonl, const std::string& name, const std::string& where,
                int64_t limit) {
  Task task;
  task.name = name;
  task.kind = kind;
  std::optional<bool> shared;  // multiple_choice: the shape of the first example
  size_t pos = 0;
  for (int64_t number = 1; pos < jsonl.size() && (limit <= 0 || task.size() < limit); ++number) {
    size_t end = jsonl.find('\n', pos);
    if (end == std::string_view::npos) end = jsonl.size();
    const std::string_view text = jsonl.substr(pos, end - pos);
    pos = end + 1;
    if (python_strip(text).empty()) continue;
    const std::string at = fmt::format("{} line {}", where, number);
    json j;
    try {
      j = json::parse(text);
    } catch (const json::parse_error& e) {
      throw Error(fmt::format("{}: not valid JSON ({})", at, e.what()));
    }
    if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", at));
    const Line line(j, at);
    switch (kind) {
      case TaskKind::Perplexity: task.docs.push_back(parse_doc(line)); break;
      case TaskKind::Lambada: task.texts.push_back(line.string("text")); break;
      case TaskKind::Pairs: task.pairs.push_back(parse_pair(line)); break;
      case TaskKind::MultipleChoice: {
        bool s = false;
        task.choices.push_back(parse_choice(line, s));
        if (shared && *shared != s) line.fail("examples mix the \"choices\" and \"contexts\" shapes");
        shared = s;
        break;
      }
    }
  }
  if (task.size() == 0) throw Error(fmt::format("{}: no examples", where));
  task.has_acc_norm = !shared.value_or(false);
  return task;
}

Task load_task(TaskKind kind, const std::filesystem::path& file, int64_t limit) {
  if (std::filesystem::is_directory(file)) throw Error(fmt::format("{} is a folder, not a task file", file.string()));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open task file {}", file.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_task(kind, ss.str(), file.stem().string(), file.string(), limit);
}

}  // namespace gptneo::eval
