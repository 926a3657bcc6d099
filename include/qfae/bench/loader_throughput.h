// Throughput of the training data loader (`qfae bench --mode loader`): decoding, augmentation and
// batching of the config's training images, as the trainer runs them, with no model.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qfae/config/config.h"

namespace qfae::bench {

struct LoaderBenchOptions {
  int64_t batch_size = 64;
  int64_t warmup = 3;       // batches taken before the clock starts
  int64_t batches = 20;     // batches timed (epochs restart as needed)
  int64_t workers = -1;     // loader threads; -1 = data.workers (0 = one per core)
  bool pin_memory = false;  // as training on CUDA does: batches stacked into page-locked memory
};

struct LoaderBenchResult {
  std::string root;
  int64_t image_size = 0, batch_size = 0, workers = 0, warmup = 0;
  int64_t batches = 0, images = 0;  // timed
  int64_t train_images = 0;         // in the data set
  bool augment = false;
  bool pinned = false;
  double seconds = 0;       // wall time of the timed batches
  double images_per_s = 0;  // images / seconds
  double images_per_s_per_worker = 0;
  std::vector<double> batch_seconds;  // wait of the consumer for each timed batch
};

// Indexes cfg.data, loads training batches exactly as the trainer does (shuffled, last partial
// batch dropped, data.augment) and times `batches` of them after `warmup`. UserError when the data
// set has no training images or fewer than one batch.
LoaderBenchResult loader_throughput(const config::Config& cfg, const LoaderBenchOptions& options);

nlohmann::json to_json(const LoaderBenchResult& result);
std::string format_result(const LoaderBenchResult& result);

}  // namespace qfae::bench
