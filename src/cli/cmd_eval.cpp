// gptneo eval: zero-shot evaluation tasks (the lm-evaluation-harness
// definitions) from JSONL task files; --prepare converts the published data
// sets' files into task files.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "cli/common.h"
#include "core/progress.h"
#include "gptneo/error.h"
#include "gptneo/eval.h"

namespace gptneo::cli {

namespace {

struct EvalArgs {
  ModelOptions model;
  std::vector<std::string> tasks;
  int64_t limit = 0;
  int64_t batch = 16;
  int64_t bootstrap_iters = 100000;
  std::string pair_encoding = "separate";
  bool json = false;
  std::string prepare;
  std::vector<std::string> files;
  std::string output;
};

struct TaskSpec {
  eval::TaskKind kind;
  std::string file;
};

TaskSpec parse_task_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos)
    throw Error(fmt::format("--task \"{}\": expected KIND:FILE (KIND: perplexity, lambada, multiple_choice, pairs)",
                            spec));
  const std::string kind = spec.substr(0, colon);
  const auto k = eval::task_kind_from_name(kind);
  if (!k)
    throw Error(fmt::format("--task \"{}\": unknown task kind \"{}\" (expected perplexity, lambada, "
                            "multiple_choice or pairs)",
                            spec, kind));
  if (colon + 1 == spec.size()) throw Error(fmt::format("--task \"{}\": no file after the kind", spec));
  return {*k, spec.substr(colon + 1)};
}

void run_prepare(const EvalArgs& args) {
  if (args.files.empty()) throw Error(fmt::format("--prepare {} needs the data set's file(s)", args.prepare));
  const std::vector<std::filesystem::path> files(args.files.begin(), args.files.end());
  std::string jsonl;
  const eval::TaskKind kind = eval::prepare_dataset(args.prepare, files, jsonl);
  if (args.output.empty()) {
    std::fwrite(jsonl.data(), 1, jsonl.size(), stdout);
    std::fflush(stdout);
  } else {
    std::ofstream out(args.output, std::ios::binary);
    if (!out || !out.write(jsonl.data(), static_cast<std::streamsize>(jsonl.size())))
      throw Error(fmt::format("cannot write {}", args.output));
  }
  const size_t lines = static_cast<size_t>(std::count(jsonl.begin(), jsonl.end(), '\n'));
  std::fprintf(stderr, "gptneo: wrote %zu %s examples%s%s (run with --task %s:FILE)\n", lines,
               std::string(eval::task_kind_name(kind)).c_str(), args.output.empty() ? "" : " to ",
               args.output.c_str(), std::string(eval::task_kind_name(kind)).c_str());
}

std::string format_stderr(const eval::Metric& m) {
  return m.stderr_value ? fmt::format("± {:.4f}", *m.stderr_value) : "";
}

void print_table(const std::vector<eval::TaskResult>& results) {
  std::printf("%-20s %-16s %6s  %-32s %12s  %s\n", "task", "kind", "n", "metric", "value", "stderr");
  for (const auto& r : results) {
    bool first = true;
    auto row = [&](const std::string& metric, const eval::Metric& m, int64_t n) {
      std::printf("%-20s %-16s %6s  %-32s %12.4f  %s\n", first ? r.name.c_str() : "",
                  first ? std::string(eval::task_kind_name(r.kind)).c_str() : "",
                  first || n != r.n ? std::to_string(n).c_str() : "", metric.c_str(), m.value,
                  format_stderr(m).c_str());
      first = false;
    };
    for (const auto& m : r.metrics) row(m.name, m, r.n);
    for (const auto& c : r.categories)
      for (const auto& m : c.metrics)
        if (m.name == "pct_stereotype") row(m.name + "/" + c.category, m, c.n);
  }
  for (const auto& r : results)
    std::printf("%s: %lld examples in %.1f s (%.1f examples/s, %lld tokens, %.0f tokens/s)\n", r.name.c_str(),
                static_cast<long long>(r.n), r.seconds, r.examples_per_second(), static_cast<long long>(r.tokens),
                r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0);
}

// {"task": {"metric": value, "metric_stderr": value or null, ..., "n": count}}
void add_metrics(nlohmann::ordered_json& j, const std::vector<eval::Metric>& metrics, int64_t n) {
  for (const auto& m : metrics) {
    j[m.name] = m.value;
    j[m.name + "_stderr"] = m.stderr_value ? nlohmann::ordered_json(*m.stderr_value) : nlohmann::ordered_json();
  }
  j["n"] = n;
}

nlohmann::ordered_json results_json(const std::vector<eval::TaskResult>& results) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& r : results) {
    nlohmann::ordered_json t;
    t["kind"] = eval::task_kind_name(r.kind);
    add_metrics(t, r.metrics, r.n);
    if (!r.categories.empty()) {
      nlohmann::ordered_json cats = nlohmann::ordered_json::object();
      for (const auto& c : r.categories) add_metrics(cats[c.category], c.metrics, c.n);
      t["categories"] = cats;
    }
    t["seconds"] = r.seconds;
    t["examples_per_s"] = r.examples_per_second();
    t["tokens"] = r.tokens;
    out[r.name] = t;
  }
  return out;
}

void run_eval(const EvalArgs& args) {
  if (args.tasks.empty()) throw Error("give at least one --task KIND:FILE (or --prepare DATASET FILE...)");
  if (!args.files.empty()) throw Error(fmt::format("unexpected argument \"{}\" (files go after --task KIND:)", args.files[0]));
  eval::EvalOptions options;
  options.batch = args.batch;
  options.bootstrap_iters = args.bootstrap_iters;
  if (args.pair_encoding == "joint") options.pair_encoding = eval::PairEncoding::Joint;
  else if (args.pair_encoding != "separate")
    throw Error(fmt::format("--pair-encoding \"{}\": expected separate or joint", args.pair_encoding));

  // Read every task file first, so that a bad file fails before the model loads.
  std::vector<eval::Task> tasks;
  std::map<std::string, int> seen;
  for (const auto& spec : args.tasks) {
    const TaskSpec s = parse_task_spec(spec);
    eval::Task task = eval::load_task(s.kind, s.file, args.limit);
    if (const int n = ++seen[task.name]; n > 1) task.name += fmt::format("_{}", n);
    tasks.push_back(std::move(task));
  }
  const Tokenizer tok = args.model.load_tokenizer();
  auto model = args.model.load_model();

  std::vector<eval::TaskResult> results;
  for (const auto& task : tasks) {
    Progress bar("eval " + task.name, task.size(), "examples");
    const auto start = std::chrono::steady_clock::now();
    options.progress = [&](int64_t done, int64_t) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      bar.update(done, s > 0 ? fmt::format("{:.1f} examples/s", double(done) / s) : "");
    };
    eval::Evaluator ev(*model, tok, options);
    results.push_back(ev.run(task));
    bar.finish(fmt::format("{:.1f} examples/s", results.back().examples_per_second()));
  }
  if (args.json) {
    // Ordered as given (tasks, then each task's metrics), unlike print_json's sorted keys.
    const std::string s = results_json(results).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::printf("%s\n", s.c_str());
  }
  else
    print_table(results);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Zero-shot evaluation as lm-evaluation-harness computes it (perplexity, lambada, multiple_choice, "
              "pairs task files), or --prepare a published data set's files");
  args->model.add_to(*cmd);
  cmd->add_option("--task", args->tasks,
                  "KIND:FILE, repeatable; KIND is perplexity, lambada, multiple_choice or pairs, FILE a JSONL task "
                  "file (docs/evaluation.md)");
  cmd->add_option("--limit", args->limit, "only the first N examples of each task")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", args->batch, "examples per forward pass (default 16)")->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap-iters", args->bootstrap_iters,
                  "bootstrap resamples for the stderr of lambada's perplexity (default 100000, as the harness; 0: "
                  "none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--pair-encoding", args->pair_encoding,
                  "separate: context and continuation tokenized apart (harness <= 0.3, the default); joint: as "
                  "harness 0.4");
  cmd->add_flag("--json", args->json,
                "print {\"task\": {\"metric\": value, \"metric_stderr\": value, ..., \"n\": count}, ...}");
  cmd->add_option("--prepare", args->prepare,
                  "convert a published data set to a task file: lambada_openai, hellaswag, piqa, winogrande, "
                  "wikitext (files as positional arguments)");
  cmd->add_option("-o,--output", args->output, "with --prepare: write the task file here (default: stdout)");
  cmd->add_option("files", args->files, "with --prepare: the data set's downloaded file(s)");
  cmd->callback([args] {
    if (!args->prepare.empty())
      run_prepare(*args);
    else
      run_eval(*args);
  });
}

}  // namespace gptneo::cli
