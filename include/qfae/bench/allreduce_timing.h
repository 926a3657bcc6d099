// The gradient all-reduce of data-parallel training alone (`qfae bench --mode allreduce`, run as
// a data-parallel job): the config's trainable weights in GradientReducer's buckets, their
// gradients produced by a backward that costs next to nothing, averaged over the ranks.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qfae/config/config.h"
#include "qfae/dist/communicator.h"

namespace qfae::bench {

struct AllReduceBenchOptions {
  int64_t warmup = 3;  // untimed steps
  int64_t iters = 10;  // timed steps; the median is reported
};

struct AllReduceBenchResult {
  int ranks = 0;
  std::string device, backend;
  int64_t parameters = 0;  // trainable weights of the config's autoencoder
  int64_t bytes = 0;       // their float32 gradients
  int64_t buckets = 0;
  std::vector<int64_t> bucket_bytes;  // in the order they start (the last layers' first)
  std::vector<double> step_ms;  // rank 0's, each: backward, bucket all-reduces, waits
  double median_ms = 0;
  double algorithm_gb_s = 0;  // bytes / median time
  double bus_gb_s = 0;        // x 2 (ranks - 1) / ranks: NCCL's bus bandwidth of a ring
};

// Every rank must call it. Builds the autoencoder of `config` (no backbone is read) on `device`.
AllReduceBenchResult time_allreduce(const config::Config& config, torch::Device device,
                                         dist::Communicator& comm,
                                         const AllReduceBenchOptions& options);

nlohmann::json to_json(const AllReduceBenchResult& result);
std::string format_result(const AllReduceBenchResult& result);

}  // namespace qfae::bench
