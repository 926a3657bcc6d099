// Timing GradientReducer's bucketed all-reduce on the config's gradient volume.
#include "qfae/bench/allreduce_timing.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/dist/gradient_reducer.h"
#include "qfae/model/autoencoder.h"
#include "qfae/util/math.h"

namespace qfae::bench {

AllReduceBenchResult time_allreduce(const config::Config& config, torch::Device device,
                                         dist::Communicator& comm,
                                         const AllReduceBenchOptions& options) {
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  model::QFormerAutoencoder autoencoder(anomaly::autoencoder_options(config));
  autoencoder->to(device);
  std::vector<torch::Tensor> params, weights;
  for (const auto& p : autoencoder->parameters()) {
    if (!p.requires_grad()) continue;
    params.push_back(p);
    weights.push_back(torch::randn_like(p));  // d loss / d p, fixed
  }
  dist::GradientReducer reducer(comm, params);
  AllReduceBenchResult r;
  r.ranks = comm.size();
  r.device = device.str();
  r.backend = device.is_cuda() ? "NCCL" : "Gloo";
  for (const auto& p : params) r.parameters += p.numel();
  r.bytes = r.parameters * static_cast<int64_t>(sizeof(float));
  r.buckets = reducer.buckets();
  for (int64_t b = 0; b < r.buckets; ++b) {
    r.bucket_bytes.push_back(reducer.bucket_numel(b) * static_cast<int64_t>(sizeof(float)));
  }
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < options.warmup + options.iters; ++i) {
    comm.barrier();  // the ranks start each step together
    sync();
    const auto start = std::chrono::steady_clock::now();
    reducer.prepare();
    // Backward of sum_p <p, w_p>: each gradient is w_p, in reverse order as in training, at
    // the cost of a copy.
    auto loss = torch::zeros({}, torch::TensorOptions().device(device));
    for (size_t k = 0; k < params.size(); ++k) loss = loss + (params[k] * weights[k]).sum();
    loss.backward();
    reducer.finish();
    sync();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    if (i >= options.warmup) r.step_ms.push_back(ms);
  }
  r.median_ms = percentile(r.step_ms, 50.0);
  const double seconds = r.median_ms / 1000.0;
  r.algorithm_gb_s = static_cast<double>(r.bytes) / seconds / 1e9;
  r.bus_gb_s = r.algorithm_gb_s * 2.0 * (r.ranks - 1) / r.ranks;
  return r;
}

nlohmann::json to_json(const AllReduceBenchResult& r) {
  return {{"mode", "allreduce"},          {"ranks", r.ranks},
          {"device", r.device},           {"backend", r.backend},
          {"parameters", r.parameters},   {"bytes", r.bytes},
          {"buckets", r.buckets},         {"bucket_bytes", r.bucket_bytes},
          {"step_ms", r.step_ms},
          {"median_ms", r.median_ms},     {"algorithm_gb_per_s", r.algorithm_gb_s},
          {"bus_gb_per_s", r.bus_gb_s}};
}

std::string format_result(const AllReduceBenchResult& r) {
  const auto [lo, hi] = std::minmax_element(r.step_ms.begin(), r.step_ms.end());
  char text[512];
  std::snprintf(text, sizeof text,
                "allreduce: %d ranks (%s on %s), %.2f M trainable weights = %.1f MB of float32 "
                "gradients in %lld buckets\n"
                "  per step: median %.2f ms (min %.2f, max %.2f) for backward + bucket "
                "all-reduces + waits\n"
                "  bandwidth: algorithm %.2f GB/s, bus %.2f GB/s (x 2(n-1)/n)\n",
                r.ranks, r.backend.c_str(), r.device.c_str(), r.parameters / 1e6, r.bytes / 1e6,
                static_cast<long long>(r.buckets), r.median_ms, *lo, *hi, r.algorithm_gb_s,
                r.bus_gb_s);
  return text;
}

}  // namespace qfae::bench
