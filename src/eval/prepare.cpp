// Converters from the published data sets' release files to task files, with
// the preprocessing of lm-evaluation-harness's task definitions.
#include "eval/prepare.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/whole_file.h"
#include "eval/text.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"

namespace gptneo::eval {

namespace {

using nlohmann::json;
using ordered = nlohmann::ordered_json;
namespace fs = std::filesystem;

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (true) {
    const size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(pos));
      return lines;
    }
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
}

// Calls fn(object, "FILE line N") for each non-blank line of a JSONL file.
template <class Fn>
void for_each_json_line(const fs::path& path, Fn&& fn) {
  const std::string text = read_whole_file(path);
  const auto lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (python_strip(lines[i]).empty()) continue;
    const std::string where = fmt::format("{} line {}", path.string(), i + 1);
    json j;
    try {
      j = json::parse(lines[i]);
    } catch (const json::parse_error& e) {
      throw Error(fmt::format("{}: not valid JSON ({})", where, e.what()));
    }
    if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", where));
    try {
      fn(j, where);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: unexpected fields ({})", where, e.what()));
    }
  }
}

std::string get_string(const json& j, const char* field, const std::string& where) {
  const auto it = j.find(field);
  if (it == j.end() || !it->is_string()) throw Error(fmt::format("{}: missing string field \"{}\"", where, field));
  return it->get<std::string>();
}

// A label given as a number or a numeric string ("1").
int64_t get_label(const json& j, const char* field, const std::string& where) {
  const auto it = j.find(field);
  if (it != j.end() && it->is_number_integer()) return it->get<int64_t>();
  if (it != j.end() && it->is_string()) {
    const std::string s = it->get<std::string>();
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  }
  throw Error(fmt::format("{}: missing integer field \"{}\"", where, field));
}

void emit(std::string& out, const ordered& j) {
  out += j.dump(-1, ' ', false, ordered::error_handler_t::strict);
  out += '\n';
}

void need_files(std::string_view dataset, std::span<const fs::path> files, size_t n, const char* what) {
  if (files.size() != n)
    throw Error(fmt::format("--prepare {} takes {} file(s): {} (got {})", dataset, n, what, files.size()));
}

// O\s*([^C]*?)\s*C -> O\1C: the text between an opening character and the
// next closing one loses its surrounding whitespace.
std::string squeeze_enclosed(std::string_view s, char open, char close) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t o = s.find(open, i);
    if (o == std::string_view::npos) break;
    const size_t c = s.find(close, o + 1);
    if (c == std::string_view::npos) break;
    out.append(s.substr(i, o - i)).push_back(open);
    out.append(python_strip(s.substr(o + 1, c - o - 1))).push_back(close);
    i = c + 1;
  }
  out.append(s.substr(i));
  return out;
}

// re.sub(r"/' [0-9]/", r"/'[0-9]/", s): a literal replacement.
std::string replace_slash_quote_digit(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (true) {
    size_t hit = s.find("/' ", i);
    while (hit != std::string_view::npos &&
           !(hit + 4 < s.size() && s[hit + 3] >= '0' && s[hit + 3] <= '9' && s[hit + 4] == '/'))
      hit = s.find("/' ", hit + 1);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(i, hit - i)).append("/'[0-9]/");
    i = hit + 5;
  }
  out.append(s.substr(i));
  return out;
}

// --- the data sets ---

void prepare_lambada(std::span<const fs::path> files, std::string& out) {
  need_files("lambada_openai", files, 1, "lambada_test.jsonl");
  for_each_json_line(files[0], [&](const json& j, const std::string& where) {
    emit(out, ordered{{"text", get_string(j, "text", where)}});
  });
}

void prepare_hellaswag(std::span<const fs::path> files, std::string& out) {
  need_files("hellaswag", files, 1, "hellaswag_val.jsonl");
  for_each_json_line(files[0], [&](const json& j, const std::string& where) {
    const std::string ctx = get_string(j, "ctx_a", where) + " " + ascii_capitalize(get_string(j, "ctx_b", where));
    ordered line;
    line["context"] = hellaswag_preprocess(get_string(j, "activity_label", where) + ": " + ctx);
    std::vector<std::string> choices;
    const auto endings = j.find("endings");
    if (endings == j.end() || !endings->is_array()) throw Error(fmt::format("{}: missing list \"endings\"", where));
    for (const auto& e : *endings) {
      if (!e.is_string()) throw Error(fmt::format("{}: \"endings\" must hold strings", where));
      choices.push_back(hellaswag_preprocess(e.get<std::string>()));
    }
    line["choices"] = choices;
    const int64_t gold = get_label(j, "label", where);
    if (gold < 0 || gold >= static_cast<int64_t>(choices.size()))
      throw Error(fmt::format("{}: label {} is not an ending's index", where, gold));
    line["gold"] = gold;
    emit(out, line);
  });
}

void prepare_piqa(std::span<const fs::path> files, std::string& out) {
  need_files("piqa", files, 2, "valid.jsonl and valid-labels.lst");
  const std::string labels_text = read_whole_file(files[1]);
  std::vector<int64_t> labels;
  for (const auto line : split_lines(labels_text)) {
    const std::string_view l = python_strip(line);
    if (l.empty()) continue;
    if (l != "0" && l != "1")
      throw Error(fmt::format("{}: label \"{}\" is not 0 or 1", files[1].string(), std::string(l)));
    labels.push_back(l == "1");
  }
  size_t n = 0;
  for_each_json_line(files[0], [&](const json& j, const std::string& where) {
    if (n >= labels.size()) throw Error(fmt::format("{}: more examples than labels in {}", where, files[1].string()));
    emit(out, ordered{{"context", "Question: " + get_string(j, "goal", where) + "\nAnswer:"},
                      {"choices", {get_string(j, "sol1", where), get_string(j, "sol2", where)}},
                      {"gold", labels[n++]}});
  });
  if (n != labels.size())
    throw Error(fmt::format("{} has {} examples but {} has {} labels", files[0].string(), n, files[1].string(),
                            labels.size()));
}

// Partial scoring (Trinh & Le; GPT-3's Winogrande): each option fills the
// blank, and what is scored is the rest of the sentence after the blank,
// given the sentence up to and including the option.
void prepare_winogrande(std::span<const fs::path> files, std::string& out) {
  need_files("winogrande", files, 1, "dev.jsonl");
  for_each_json_line(files[0], [&](const json& j, const std::string& where) {
    const std::string sentence = get_string(j, "sentence", where);
    const size_t blank = sentence.find('_');
    if (blank == std::string::npos) throw Error(fmt::format("{}: the sentence has no blank \"_\"", where));
    const int64_t answer = get_label(j, "answer", where);
    if (answer != 1 && answer != 2) throw Error(fmt::format("{}: \"answer\" must be \"1\" or \"2\"", where));
    const std::string before = sentence.substr(0, blank);
    emit(out, ordered{{"contexts", {before + get_string(j, "option1", where), before + get_string(j, "option2", where)}},
                      {"continuation", std::string(python_strip(std::string_view(sentence).substr(blank + 1)))},
                      {"gold", answer - 1}});
  });
}

void prepare_wikitext(std::span<const fs::path> files, std::string& out) {
  need_files("wikitext", files, 1, "wiki.test.raw (wikitext-2-raw-v1)");
  for (const std::string& page : wikitext_pages(read_whole_file(files[0]))) {
    // The word and byte counts are those of the page before detokenization.
    emit(out, ordered{{"text", wikitext_detokenize(page)},
                      {"words", python_word_count(page)},
                      {"bytes", static_cast<int64_t>(page.size())}});
  }
}

}  // namespace

std::vector<std::string> wikitext_pages(std::string_view raw) {
  std::vector<std::string> pages;
  std::vector<std::string_view> current;
  auto join = [&] {
    std::string page;
    for (size_t i = 0; i < current.size(); ++i) {
      if (i) page += '\n';
      page.append(current[i]);
    }
    return page;
  };
  for (const std::string_view line : split_lines(raw)) {
    const std::string heading = replace_all(replace_all(line, "= = =", "==="), "= =", "==");
    const std::string_view h = python_strip(heading);
    if (h.starts_with("= ") && h.ends_with(" =")) {
      std::string page = join();
      if (!python_strip(page).empty()) pages.push_back(std::move(page));
      current.clear();
    }
    current.push_back(line);
  }
  pages.push_back(join());  // the last page, as the data set yields it
  return pages;
}

std::string wikitext_detokenize(std::string_view page) {
  std::string s = replace_all(page, "s '", "s'");
  s = replace_slash_quote_digit(s);
  for (const auto& [from, to] : {std::pair{" @-@ ", "-"}, {" @,@ ", ","}, {" @.@ ", "."}, {" : ", ": "},
                                 {" ; ", "; "}, {" . ", ". "}, {" ! ", "! "}, {" ? ", "? "}, {" , ", ", "}})
    s = replace_all(s, from, to);
  for (const auto& [open, close] : {std::pair{'(', ')'}, {'[', ']'}, {'{', '}'}, {'"', '"'}, {'\'', '\''}})
    s = squeeze_enclosed(s, open, close);
  for (const auto& [from, to] : {std::pair{"= = = =", "===="}, {"= = =", "==="}, {"= =", "=="},
                                 {" \xC2\xB0 ", "\xC2\xB0"}, {" \n", "\n"}, {"\n ", "\n"}, {" N ", " 1 "},
                                 {" 's", "'s"}})
    s = replace_all(s, from, to);
  return s;
}

std::string hellaswag_preprocess(std::string_view text) {
  std::string s = replace_all(python_strip(text), " [title]", ". ");
  // re.sub(r"\[.*?\]", "", s): "." does not match a newline.
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '[') {
      const size_t close = s.find_first_of("]\n", i + 1);
      if (close != std::string::npos && s[close] == ']') {
        i = close + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return replace_all(out, "  ", " ");
}

std::vector<std::string> preparable_datasets() { return {"lambada_openai", "hellaswag", "piqa", "winogrande", "wikitext"}; }

TaskKind prepare_dataset(std::string_view dataset, std::span<const fs::path> files, std::string& jsonl) {
  jsonl.clear();
  if (dataset == "lambada_openai") return prepare_lambada(files, jsonl), TaskKind::Lambada;
  if (dataset == "hellaswag") return prepare_hellaswag(files, jsonl), TaskKind::MultipleChoice;
  if (dataset == "piqa") return prepare_piqa(files, jsonl), TaskKind::MultipleChoice;
  if (dataset == "winogrande") return prepare_winogrande(files, jsonl), TaskKind::MultipleChoice;
  if (dataset == "wikitext") return prepare_wikitext(files, jsonl), TaskKind::Perplexity;
  throw Error(fmt::format("unknown data set \"{}\" for --prepare (known: lambada_openai, hellaswag, piqa, "
                          "winogrande, wikitext)",
                          dataset));
}

}  // namespace gptneo::eval
