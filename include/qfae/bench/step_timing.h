// Timing of the training step and the evaluation step of a config on random images (`qfae bench`):
// warm-up, then the median of N timed steps, peak memory and FLOP-based utilisation.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "qfae/bench/flops.h"
#include "qfae/bench/matmul_probe.h"
#include "qfae/bench/op_profile.h"
#include "qfae/config/config.h"

namespace qfae::bench {

struct BenchOptions {
  bool train = true;
  bool eval = true;
  int64_t batch_size = 64;
  int64_t warmup = 3;
  int64_t iters = 10;
  std::string precision = "fp32";  // fp32 | tf32 | bf16
  double peak_tflops = 0;          // > 0: the peak for the utilisation; 0: the matmul probe's
  int64_t probe_n = 2048;          // the matmul probe's size (bench/matmul_probe.h)
  std::string profile_dir;         // non-empty: one more step per phase under the profiler, its
                                   // trace and per-op table written here (bench/op_profile.h)
};

struct PhaseResult {
  std::string phase;  // "train" | "eval"
  std::vector<double> step_seconds;
  double median_s = 0, min_s = 0, max_s = 0;
  double images_per_s = 0;  // batch / median
  FlopCount flops;
  double achieved_tflops = 0;  // flops per step / median
  double utilisation = -1;     // achieved / peak; < 0 when no peak is known
  std::string memory_kind;     // what peak_memory_bytes measures
  int64_t peak_memory_bytes = -1;
  int64_t peak_reserved_bytes = -1;  // CUDA caching allocator only
  std::vector<OpTime> ops;           // the profiled step's ops (BenchOptions::profile_dir)
};

struct BenchResult {
  std::string device, precision, torch_version;
  bool autocast_bf16 = false, tf32 = false;  // what actually ran
  bool frozen_bf16 = false;                   // the frozen networks' weights held in bf16
  int64_t batch_size = 0, warmup = 0, iters = 0, threads = 0;
  double peak_tflops = 0;   // what the utilisation compares with
  std::string peak_source;  // "--peak-tflops" or "matmul probe"
  MatmulProbe probe;        // measured in the same run, at the precision the steps ran in
  std::vector<PhaseResult> phases;
};

// Probes the device's matmul throughput at the steps' precision (the utilisation's peak unless
// options.peak_tflops is given), builds the config's AnomalyModel on `device` (backbones from its
// files, fresh autoencoder weights) and times the chosen steps. No data set is read: the images are one random batch, made
// once.
BenchResult time_steps(const config::Config& config, torch::Device device,
                      const BenchOptions& options);

nlohmann::json to_json(const BenchResult& result);
// A short human-readable table.
std::string format_result(const BenchResult& result);

}  // namespace qfae::bench
