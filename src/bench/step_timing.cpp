// Timing of the training and evaluation steps on random images, with peak memory and FLOP-based
// utilisation (qfae bench).
#include "qfae/bench/step_timing.h"

#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/backbone/description.h"
#include "qfae/scoring/scoring_pass.h"
#include "qfae/train/train_step.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/torch_compat.h"

namespace qfae::bench {
namespace {

using Clock = std::chrono::steady_clock;

// CPU peak memory: the kernel's resident high-water mark (VmHWM), reset through clear_refs
// (Linux >= 4.0) so that each phase reports its own peak; where that fails, getrusage's
// ru_maxrss, which covers the whole process since it started.
bool reset_cpu_peak() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

int64_t read_vm_hwm_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream in(line.substr(6));
      int64_t kb = -1;
      in >> kb;
      return kb < 0 ? -1 : kb * 1024;
    }
  }
  return -1;
}

int64_t rusage_peak_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // kilobytes on Linux
}

struct MemoryProbe {
  torch::Device device;
  bool cpu_resettable = false;

  void reset() {
    if (device.is_cuda()) {
      compat::reset_peak_memory(device);
    } else {
      cpu_resettable = reset_cpu_peak() && read_vm_hwm_bytes() > 0;
    }
  }

  void read(PhaseResult& r) const {
    if (device.is_cuda()) {
      if (const auto peak = compat::peak_memory(device)) {
        r.memory_kind = "CUDA caching allocator peak (allocated; reserved separately)";
        r.peak_memory_bytes = peak->allocated;
        r.peak_reserved_bytes = peak->reserved;
      } else {
        r.memory_kind = "not available in this LibTorch (needs >= 2.9)";
      }
    } else if (cpu_resettable) {
      r.memory_kind = "CPU peak RSS of this phase (VmHWM, reset after warm-up)";
      r.peak_memory_bytes = read_vm_hwm_bytes();
    } else {
      r.memory_kind = "CPU peak RSS of the whole process (getrusage ru_maxrss)";
      r.peak_memory_bytes = rusage_peak_bytes();
    }
  }
};

// The profiled step's ops as a CSV table, largest self time first.
void write_op_table(const std::vector<OpTime>& ops, const std::filesystem::path& path) {
  std::ostringstream csv;
  csv << "op,calls,self_ms,total_ms,self_share\n";
  for (const auto& op : ops) {
    csv << csv_field(op.name) << ',' << op.calls << ',' << op.self_ms << ',' << op.total_ms << ','
        << op.self_share << '\n';
  }
  write_file_atomic(path.string(), csv.str());
}

template <class Step>
PhaseResult time_phase(const std::string& name, Step&& step, torch::Device device,
                       const BenchOptions& options, const FlopCount& flops, double peak_tflops) {
  for (int64_t i = 0; i < options.warmup; ++i) step();
  compat::synchronize(device);
  MemoryProbe memory{device};
  memory.reset();
  PhaseResult r;
  r.phase = name;
  r.flops = flops;
  for (int64_t i = 0; i < options.iters; ++i) {
    const auto start = Clock::now();
    step();
    compat::synchronize(device);  // the step itself never waits for the device
    r.step_seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  memory.read(r);
  if (!options.profile_dir.empty()) {
    const std::filesystem::path dir(options.profile_dir);
    r.ops = profile_step(
        [&] {
          step();
          compat::synchronize(device);
        },
        (dir / (name + ".trace.json")).string());
    write_op_table(r.ops, dir / (name + ".ops.csv"));
  }
  auto sorted = r.step_seconds;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  r.median_s = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  r.min_s = sorted.front();
  r.max_s = sorted.back();
  r.images_per_s = static_cast<double>(flops.batch) / r.median_s;
  r.achieved_tflops = flops.total() / r.median_s / 1e12;
  if (peak_tflops > 0) r.utilisation = r.achieved_tflops / peak_tflops;
  log("bench")->info("{}: median {:.1f} ms, {:.1f} images/s", name, r.median_s * 1e3,
                     r.images_per_s);
  return r;
}

std::string human_bytes(int64_t bytes) {
  if (bytes < 0) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

}  // namespace

namespace {

// What ran: device, LibTorch, threads, the precision as the device resolved it.
BenchResult describe_bench(torch::Device device, const BenchOptions& options,
                           anomaly::Precision precision) {
  BenchResult result;
  result.device = device.str();
  result.torch_version = TORCH_VERSION;
  result.batch_size = options.batch_size;
  result.warmup = options.warmup;
  result.iters = options.iters;
  result.threads = torch::get_num_threads();
  result.tf32 = precision == anomaly::Precision::kTf32;
  result.autocast_bf16 = precision == anomaly::Precision::kBf16;
  result.precision = anomaly::precision_name(precision);
  return result;
}

// The evaluation step as `qfae eval` runs it: one round of the scoring pass
// (scoring/scoring_pass.h) over the batch: reconstruction, layer maps, smoothing, pixel maps and
// image scores at `precision`, the copies to the host, the finiteness check, the display images.
PhaseResult time_eval(anomaly::AnomalyModel& model, const std::string& precision,
                      const torch::Tensor& images, const BenchOptions& options,
                      const FlopCount& flops, double peak_tflops) {
  auto eval = model.config().eval;
  eval.precision = precision;
  anomaly::AnomalyScorer scorer(model, eval);
  std::vector<int64_t> positions(static_cast<size_t>(images.size(0)));
  std::iota(positions.begin(), positions.end(), int64_t{0});
  scoring::PassOptions po;
  po.images = true;
  po.stoppable = false;
  int64_t finite = 0;
  auto step = [&] {
    bool given = false;
    scoring::score_rounds(
        [&](scoring::RoundBatch& batch) {
          if (given) return false;
          given = true;
          batch.images = images;
          batch.positions = positions;
          return true;
        },
        [&](const torch::Tensor& x) { return scorer.submit(x); }, model.config().data, nullptr,
        po, images.size(0), [&](const scoring::ScoredRows& scored) {
          for (const auto& row : scored.rows) finite += row.finite ? 1 : 0;
        });
  };
  auto result = time_phase("eval", step, model.device(), options, flops, peak_tflops);
  const int64_t scored = (options.warmup + options.iters) * images.size(0);
  if (finite < scored) {
    log("bench")->warn("eval: {} of {} anomaly maps were not finite", scored - finite, scored);
  }
  return result;
}

// The training step exactly as Trainer runs it (train::TrainStep), without the data loader.
PhaseResult time_train(anomaly::AnomalyModel& model, anomaly::Precision precision,
                       const torch::Tensor& images, const BenchOptions& options,
                       const FlopCount& flops, double peak_tflops) {
  const int64_t steps = options.warmup + options.iters + (options.profile_dir.empty() ? 0 : 1);
  train::TrainStep train_step(model, steps, precision);
  model.autoencoder()->train();
  int64_t index = 0;
  auto step = [&] { train_step(images, index++); };
  return time_phase("train", step, model.device(), options, flops, peak_tflops);
}

}  // namespace

BenchResult time_steps(const config::Config& config, torch::Device device,
                      const BenchOptions& options) {
  TORCH_CHECK(options.iters >= 1 && options.warmup >= 0 && options.batch_size >= 1,
              "time_steps: iters >= 1, warmup >= 0 and batch_size >= 1 expected");
  const auto precision =
      anomaly::resolve_precision_warning(options.precision, device, "--precision");
  BenchResult result = describe_bench(device, options, precision);
  // The peak, measured before the model takes memory and caches.
  result.probe = probe_matmul(device, precision, options.probe_n);
  log("bench")->info("matmul probe: ({0}, {0}) @ ({0}, {0}) in {1}: {2:.3f} TFLOP/s",
                     result.probe.n, result.probe.dtype, result.probe.tflops);
  const bool given = options.peak_tflops > 0;
  result.peak_tflops = given ? options.peak_tflops : result.probe.tflops;
  result.peak_source = given ? "--peak-tflops" : "matmul probe";
  anomaly::AnomalyModel model(config, device);
  model.set_frozen_dtype(model.frozen_dtype_for(precision));
  result.frozen_bf16 = model.frozen_dtype() == torch::kBFloat16;
  std::vector<backbone::BackboneDescription> encoders;
  for (const auto& path : config.backbone.encoders) {
    encoders.push_back(backbone::read_description(path));
  }
  const auto shapes = model_shapes(config, encoders, model.perceptual_backbone().description());

  torch::manual_seed(static_cast<uint64_t>(config.train.seed));  // the random batch below
  const auto size = config.data.image_size;
  const auto images =
      torch::randn({options.batch_size, 3, size, size}, torch::TensorOptions().device(device));
  // Evaluation first: its peak memory then excludes the optimizer state and gradients.
  if (options.eval) {
    result.phases.push_back(time_eval(model, options.precision, images, options,
                                      eval_step_flops(shapes, options.batch_size),
                                      result.peak_tflops));
  }
  if (options.train) {
    result.phases.push_back(time_train(model, precision, images, options,
                                       train_step_flops(shapes, options.batch_size),
                                       result.peak_tflops));
  }
  return result;
}

nlohmann::json to_json(const BenchResult& r) {
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& p : r.phases) {
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& part : p.flops.parts) {
      parts.push_back(
          {{"name", part.name}, {"forward", part.forward}, {"backward", part.backward}});
    }
    phases.push_back(
        {{"phase", p.phase},
         {"images_per_s", p.images_per_s},
         {"step_s",
          {{"median", p.median_s}, {"min", p.min_s}, {"max", p.max_s}, {"all", p.step_seconds}}},
         {"flops",
          {{"per_step", p.flops.total()},
           {"per_image", p.flops.per_image()},
           {"forward", p.flops.forward()},
           {"backward", p.flops.backward()},
           {"parts", parts}}},
         {"achieved_tflops", p.achieved_tflops},
         {"utilisation", p.utilisation >= 0 ? nlohmann::json(p.utilisation) : nlohmann::json()},
         {"memory",
          {{"kind", p.memory_kind},
           {"peak_bytes", p.peak_memory_bytes},
           {"peak_reserved_bytes", p.peak_reserved_bytes}}}});
    if (!p.ops.empty()) {
      nlohmann::json ops = nlohmann::json::array();
      for (size_t i = 0; i < p.ops.size() && i < 30; ++i) {
        const auto& op = p.ops[i];
        ops.push_back({{"op", op.name},
                       {"calls", op.calls},
                       {"self_ms", op.self_ms},
                       {"total_ms", op.total_ms},
                       {"self_share", op.self_share}});
      }
      phases.back()["profile"] = {{"ops", ops}, {"ops_in_trace", p.ops.size()}};
    }
  }
  return {{"device", r.device},
          {"precision", r.precision},
          {"autocast_bf16", r.autocast_bf16},
          {"tf32", r.tf32},
          {"frozen_weights", r.frozen_bf16 ? "bf16" : "fp32"},
          {"torch_version", r.torch_version},
          {"batch_size", r.batch_size},
          {"warmup", r.warmup},
          {"iters", r.iters},
          {"threads", r.threads},
          {"peak_tflops", r.peak_tflops > 0 ? nlohmann::json(r.peak_tflops) : nlohmann::json()},
          {"peak_source", r.peak_source},
          {"matmul_probe",
           {{"n", r.probe.n},
            {"dtype", r.probe.dtype},
            {"reps", r.probe.reps},
            {"seconds", r.probe.seconds},
            {"tflops", r.probe.tflops}}},
          {"flop_formula", flop_formula()},
          {"phases", phases}};
}

std::string format_result(const BenchResult& r) {
  std::ostringstream out;
  char line[256];
  out << "qfae bench: " << r.device << ", " << r.precision
      << (r.autocast_bf16 ? " (bf16 autocast)"
          : r.tf32        ? " (TF32 matmuls)"
                          : "")
      << (r.frozen_bf16 ? ", frozen networks' weights in bf16" : "") << ", batch " << r.batch_size
      << ", " << r.warmup << " warm-up + " << r.iters << " timed steps, LibTorch "
      << r.torch_version << ", " << r.threads << " CPU threads\n";
  std::snprintf(line, sizeof(line), "%-6s %10s %28s %10s %10s %8s  %s\n", "phase", "images/s",
                "step ms: median (min-max)", "TFLOP/img", "TFLOP/s", "util", "peak memory");
  out << line;
  for (const auto& p : r.phases) {
    char step[64], util[16];
    std::snprintf(step, sizeof(step), "%.1f (%.1f-%.1f)", p.median_s * 1e3, p.min_s * 1e3,
                  p.max_s * 1e3);
    if (p.utilisation >= 0) {
      std::snprintf(util, sizeof(util), "%.1f%%", 100 * p.utilisation);
    } else {
      std::snprintf(util, sizeof(util), "n/a");
    }
    std::snprintf(line, sizeof(line), "%-6s %10.1f %28s %10.4f %10.3f %8s  %s\n", p.phase.c_str(),
                  p.images_per_s, step, p.flops.per_image() / 1e12, p.achieved_tflops, util,
                  human_bytes(p.peak_memory_bytes).c_str());
    out << line;
  }
  for (const auto& p : r.phases) out << "memory (" << p.phase << "): " << p.memory_kind << "\n";
  for (const auto& p : r.phases) {
    if (p.ops.empty()) continue;
    out << "profiled " << p.phase << " step, largest self times (op, calls, self ms, share):\n";
    for (size_t i = 0; i < p.ops.size() && i < 8; ++i) {
      std::snprintf(line, sizeof(line), "  %-40s %7lld %10.1f %6.1f%%\n", p.ops[i].name.c_str(),
                    static_cast<long long>(p.ops[i].calls), p.ops[i].self_ms,
                    100 * p.ops[i].self_share);
      out << line;
    }
  }
  std::snprintf(line, sizeof(line),
                "matmul probe: (%lld, %lld) @ (%lld, %lld) in %s on %s: %.3f TFLOP/s (%lld products, "
                "%.2f s)\n",
                static_cast<long long>(r.probe.n), static_cast<long long>(r.probe.n),
                static_cast<long long>(r.probe.n), static_cast<long long>(r.probe.n),
                r.probe.dtype.c_str(), r.device.c_str(), r.probe.tflops,
                static_cast<long long>(r.probe.reps), r.probe.seconds);
  out << line;
  std::snprintf(line, sizeof(line), "util = achieved / peak %.3f TFLOP/s (%s)\n", r.peak_tflops,
                r.peak_source.c_str());
  out << line;
  out << flop_formula() << "\n";
  return out.str();
}

}  // namespace qfae::bench
