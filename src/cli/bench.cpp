// `qfae bench`: times the training and evaluation steps of a config on random images and prints
// images/s, step times, peak memory and FLOP-based utilisation (docs/performance.md); with
// --mode loader, the training data loader on the config's data instead.
#include "qfae/bench/step_timing.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "qfae/bench/allreduce_timing.h"
#include "qfae/bench/flops.h"
#include "qfae/bench/loader_throughput.h"
#include "qfae/cli/app.h"
#include "qfae/cli/common.h"
#include "qfae/cli/dist_options.h"
#include "qfae/dist/launch.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;

namespace qfae::cli {

namespace {
struct BenchCliOptions {
  CommonOptions common;
  std::string mode = "both";
  int64_t batch_size = 0;  // 0: train.batch_size
  int64_t warmup = 3;
  int64_t iters = 10;
  std::string precision;  // empty: train.precision
  double peak_tflops = 0;
  std::string json;
  std::string profile;   // folder for the profiled steps' traces and op tables
  int64_t workers = -1;  // loader mode: -1 = data.workers
  DistOptions dist;      // allreduce mode
};

void require_file(const std::string& key, const std::string& path) {
  if (path.empty() || !fs::is_regular_file(path)) {
    throw UserError(key + ": '" + path +
                    "' does not exist (export it with "
                    "scripts/export_backbone.py, --random-init is enough for timing)");
  }
}

int run_loader_bench(const BenchCliOptions& o) {
  const auto loaded = resolve_config(o.common, /*check_files=*/false);
  const auto& cfg = loaded.config;
  if (!fs::is_directory(cfg.data.root)) {
    throw UserError("data.root: '" + cfg.data.root + "' is not a folder (bench --mode loader "
                    "reads the training images)");
  }
  bench::LoaderBenchOptions options;
  options.batch_size = o.batch_size > 0 ? o.batch_size : cfg.train.batch_size;
  options.warmup = o.warmup;
  options.batches = o.iters;
  options.workers = o.workers;
  options.pin_memory = resolve_device(cfg.device).is_cuda();  // what training there does
  const auto result = bench::loader_throughput(cfg, options);
  std::cout << bench::format_result(result) << std::flush;
  if (!o.json.empty()) {
    write_file_atomic(o.json, bench::to_json(result).dump(2) + "\n");
    log("bench")->info("wrote {}", o.json);
  }
  return 0;
}

int run_allreduce_bench(const BenchCliOptions& o) {
  const auto world = dist::world_from_environment();
  check_nproc(o.dist.nproc, world);
  const auto loaded = resolve_config(o.common, /*check_files=*/false);
  const auto& cfg = loaded.config;
  if (o.dist.nproc > 1) {
    check_launch(o.dist, cfg.device, 0);
    return dist::launch_local(o.dist.nproc, dist::without_nproc(command_line()), o.dist.timeout_s);
  }
  if (!world.distributed()) {
    throw UserError("--mode allreduce times the all-reduce between the ranks of a data-parallel "
                    "job: add --nproc N (N >= 2), or launch it with torchrun or srun");
  }
  const auto device = rank_device(resolve_device(cfg.device), world);
  const auto comm = join_world(world, device, o.dist);
  bench::AllReduceBenchOptions options;
  options.warmup = o.warmup;
  options.iters = o.iters;
  const auto result = bench::time_allreduce(cfg, device, *comm, options);
  if (!comm->leader()) return 0;
  std::cout << bench::format_result(result) << std::flush;
  if (!o.json.empty()) {
    write_file_atomic(o.json, bench::to_json(result).dump(2) + "\n");
    log("bench")->info("wrote {}", o.json);
  }
  return 0;
}

int run_bench(const BenchCliOptions& o) {
  if (o.mode == "loader") return run_loader_bench(o);
  if (o.mode == "allreduce") return run_allreduce_bench(o);
  // No data set is read, so data.root need not exist; the backbone files must.
  const auto loaded = resolve_config(o.common, /*check_files=*/false);
  const auto& cfg = loaded.config;
  if (cfg.backbone.encoders.empty()) {
    throw UserError("backbone.encoders: at least one TorchScript encoder file is needed");
  }
  for (size_t i = 0; i < cfg.backbone.encoders.size(); ++i) {
    require_file("backbone.encoders[" + std::to_string(i) + "]", cfg.backbone.encoders[i]);
  }
  require_file("backbone.perceptual", cfg.backbone.perceptual);
  const auto device = resolve_device(cfg.device);

  bench::BenchOptions options;
  options.train = o.mode != "eval";
  options.eval = o.mode != "train";
  options.batch_size = o.batch_size > 0 ? o.batch_size : cfg.train.batch_size;
  options.warmup = o.warmup;
  options.iters = o.iters;
  options.precision = o.precision.empty() ? cfg.train.precision : o.precision;
  options.peak_tflops = o.peak_tflops;
  if (!o.profile.empty()) {
    with_key("--profile", [&] { make_dirs(o.profile); });
    options.profile_dir = o.profile;
  }
  log("bench")->info("device {}, {} threads, batch {}, precision {}", device.str(),
                     torch::get_num_threads(), options.batch_size, options.precision);
  const auto result = bench::time_steps(cfg, device, options);
  std::cout << bench::format_result(result) << std::flush;
  if (!o.json.empty()) {
    write_file_atomic(o.json, bench::to_json(result).dump(2) + "\n");
    log("bench")->info("wrote {}", o.json);
  }
  return 0;
}
}  // namespace

Command add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "bench",
      "Time the training and evaluation steps on random images: qfae bench --config "
      "configs/brats.yaml --precision bf16\n"
      "--mode loader times the training data loader (decoding, augmentation, batching of "
      "data.root's training images) instead: --iters batches after --warmup, images/s.\n"
      "--mode allreduce --nproc N (or under torchrun / srun) times data-parallel training's "
      "bucketed gradient all-reduce of the config's weights alone (docs/performance.md).");
  auto o = std::make_shared<BenchCliOptions>();
  add_common_options(*sub, o->common);
  sub->add_option("--mode", o->mode,
                  "Which steps to time: train, eval, both, loader, or allreduce")
      ->check(CLI::IsMember({"train", "eval", "both", "loader", "allreduce"}));
  sub->add_option("-b,--batch-size", o->batch_size, "Images per step")
      ->check(integer_at_least(1))
      ->default_str("train.batch_size");
  sub->add_option("--warmup", o->warmup, "Untimed steps first")->check(integer_at_least(0));
  sub->add_option("--iters", o->iters, "Timed steps; the median is reported")
      ->check(integer_at_least(1));
  sub->add_option("--precision", o->precision,
                  "fp32 | tf32 (TF32 matmuls, CUDA only) | bf16 (autocast and bf16 frozen "
                  "networks; on CUDA and on CPUs with AMX or AVX512-BF16, else fp32 with a note)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))
      ->default_str("train.precision");
  sub->add_option("--peak-tflops", o->peak_tflops,
                  "Peak of the device for the utilisation figure (default: measured in the same "
                  "run by a (2048, 2048) matmul probe on the device at the steps' precision, "
                  "printed beside it)")
      ->check(finite_positive())
      ->default_str("the matmul probe");
  sub->add_option("--workers", o->workers, "Loader threads for --mode loader (0: one per core)")
      ->check(integer_at_least(0))
      ->default_str("data.workers");
  sub->add_option("--json", o->json, "Also write the results to this JSON file");
  sub->add_option("--profile", o->profile,
                  "After the timed steps, run one more step of each phase under LibTorch's "
                  "profiler and write <dir>/<phase>.trace.json (open it in Perfetto or "
                  "chrome://tracing) and <dir>/<phase>.ops.csv (each op's calls and self time); "
                  "the largest are printed, and listed in --json");
  add_dist_options(*sub, o->dist,
                   "--mode allreduce: time it between this many processes on this machine");
  sub->footer(bench::flop_formula());
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace qfae::cli
