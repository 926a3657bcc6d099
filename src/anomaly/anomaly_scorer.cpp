// Anomaly maps and image scores at the test-time settings.
#include "qfae/anomaly/anomaly_scorer.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>

#include "qfae/anomaly/gaussian_smoothing.h"
#include "qfae/util/error.h"

namespace qfae::anomaly {

AnomalyScorer::AnomalyScorer(AnomalyModel& model, const config::EvalConfig& eval)
    : model_(model),
      over_pixels_(loss::parse_reduction(eval.pixel_reduction, "eval.pixel_reduction")),
      over_layers_(loss::parse_reduction(eval.layer_reduction, "eval.layer_reduction")),
      sigma_(eval.smoothing_sigma),
      precision_(resolve_precision(eval.precision, model.device(), "eval.precision")) {}

namespace {

// `t` as a contiguous host tensor of `dtype`: on CUDA an asynchronous copy into page-locked memory
// (valid once the stream has passed it), elsewhere an ordinary conversion.
torch::Tensor to_host_async(const torch::Tensor& t, torch::ScalarType dtype) {
  if (!t.is_cuda()) return t.to(torch::kCPU, dtype).contiguous();
  const auto on_device = t.to(dtype).contiguous();
  auto host =
      torch::empty(on_device.sizes(), torch::TensorOptions().dtype(dtype).pinned_memory(true));
  host.copy_(on_device, /*non_blocking=*/true);
  return host;
}

}  // namespace

AnomalyOutput PendingOutput::get() {
  if (copied_) {
    // c10::Event has no blocking wait in every LibTorch we build against; poll it (the batch
    // takes tens of milliseconds, a poll every 50 us costs nothing).
    while (!copied_->query()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    copied_.reset();
  }
  return std::move(out_);
}

PendingOutput AnomalyScorer::submit(const torch::Tensor& images) {
  auto& ae = model_.autoencoder();
  const bool was_training = ae->is_training();
  ae->eval();
  torch::NoGradGuard no_grad;
  const auto x = images.to(model_.device(), images.scalar_type(), /*non_blocking=*/true);
  PendingOutput out;
  {
    PrecisionScope scope(precision_, model_.device());
    out = submit_reconstruction(x, model_.reconstruct(x));
  }
  if (was_training) ae->train();
  return out;
}

PendingOutput AnomalyScorer::submit_reconstruction(const torch::Tensor& x,
                                                   const torch::Tensor& x_hat) {
  torch::NoGradGuard no_grad;
  auto maps = model_.test_distance().layer_maps(x, x_hat);  // (R, B, 1, H, W)
  if (sigma_ > 0) {
    const auto sizes = maps.sizes().vec();
    maps = anomaly::gaussian_smooth(maps.flatten(0, 1), sigma_).view(sizes);
  }
  PendingOutput out;
  out.out_.maps = to_host_async(loss::pixel_map(maps).squeeze(1), torch::kFloat);
  out.out_.scores =
      to_host_async(loss::image_scores(maps, over_pixels_, over_layers_), torch::kDouble);
  if (x.is_cuda()) {
    const auto device = x.device();
    out.copied_.emplace(device.type());
    out.copied_->record(c10::impl::getDeviceGuardImpl(device.type())->getStream(device));
  }
  return out;
}

Precision prepare_for_scoring(AnomalyModel& model) {
  const auto precision =
      resolve_precision_warning(model.config().eval.precision, model.device(), "eval.precision");
  model.set_frozen_dtype(model.frozen_dtype_for(precision));
  return precision;
}

}  // namespace qfae::anomaly
