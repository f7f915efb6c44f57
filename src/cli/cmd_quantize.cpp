// gptneo quantize: write a q8 / q4 model folder that loads without conversion.
#include <optional>

#include <fmt/format.h>

#include "cli/common.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "gptneo/error.h"
#include "io/quantized_weights.h"

namespace gptneo::cli {

void add_quantize_command(CLI::App& app) {
  struct Args {
    std::string model_dir, out_dir, dtype;
    int threads = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a model folder with q8 or q4 weights (memory-mapped at load, "
                                                 "no conversion)");
  cmd->add_option("-m,--model", args->model_dir, "the model folder to read")->required();
  cmd->add_option("-o,--output", args->out_dir, "the folder to write (must not exist or be empty)")->required();
  cmd->add_option("--dtype", args->dtype, "q8 (8-bit, a scale per 32 weights) or q4 (4-bit, scale and minimum per "
                                          "32 weights)")
      ->required();
  cmd->add_option("--threads", args->threads, "threads to quantize with (default: one per physical core)");
  cmd->callback([args] {
    const auto format = weight_format_from_name(args->dtype);
    if (!format || !is_quantized(*format))
      throw Error(fmt::format("quantize: unknown --dtype \"{}\" (expected q8 or q4)", args->dtype));
    ThreadPool pool(args->threads);
    std::optional<Progress> bar;
    const QuantizeResult r = quantize_model(args->model_dir, args->out_dir, *format, pool, [&](size_t done, size_t total) {
      if (!bar) bar.emplace("quantize", static_cast<int64_t>(total), "tensors");
      bar->update(static_cast<int64_t>(done));
    });
    if (bar) bar->finish();
    fmt::print("wrote {}: {} tensors ({} quantized to {}), {:.1f} MB -> {:.1f} MB\n", args->out_dir, r.tensors,
               r.quantized, args->dtype, r.bytes_in / 1e6, r.bytes_out / 1e6);
  });
}

}  // namespace gptneo::cli
