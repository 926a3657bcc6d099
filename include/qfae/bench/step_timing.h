// Timing of the training step and the evaluation step of a config on random images (`qfae bench`):
// warm-up, then the median of N timed steps, peak memory and FLOP-based utilisation.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "qfae/bench/flops.h"
#include "qfae/config/config.h"

namespace qfae::bench {

struct BenchOptions {
  bool train = true;
  bool eval = true;
  int64_t batch_size = 64;
  int64_t warmup = 3;
  int64_t iters = 10;
  std::string precision = "fp32";  // fp32 | tf32 | bf16
  double peak_tflops = 0;          // 0: the H100 SXM default of the precision on CUDA, none on CPU
};

// Dense H100 SXM peaks (TFLOP/s): bf16 989, tf32 495, fp32 67.
double default_peak_tflops(const std::string& precision);

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
};

struct BenchResult {
  std::string device, precision, torch_version;
  bool autocast_bf16 = false, tf32 = false;  // what actually ran
  bool frozen_bf16 = false;                   // the frozen networks' weights held in bf16
  int64_t batch_size = 0, warmup = 0, iters = 0, threads = 0;
  double peak_tflops = 0;
  std::vector<PhaseResult> phases;
};

// Builds the config's AnomalyModel on `device` (backbones from its files, fresh autoencoder
// weights) and times the chosen steps. No data set is read: the images are one random batch, made
// once.
BenchResult time_steps(const config::Config& config, torch::Device device,
                      const BenchOptions& options);

nlohmann::json to_json(const BenchResult& result);
// A short human-readable table.
std::string format_result(const BenchResult& result);

}  // namespace qfae::bench
