// Test-time maps and image scores of a trained AnomalyModel (docs/model.md §5): reconstruct,
// compare with the test-time perceptual settings, optionally smooth, reduce. Shared by
// training-time calibration, `qfae eval` and `qfae infer`, so all three score images the same way.
#pragma once
#include <c10/core/Event.h>
#include <torch/torch.h>

#include <optional>
#include <utility>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/config/config.h"
#include "qfae/loss/perceptual_maps.h"

// Legend: B batch, H = W image side, R layers.
namespace qfae::anomaly {

struct AnomalyOutput {
  torch::Tensor maps;    // (B, H, W) float32 on the CPU: mean over layers of the layer maps
  torch::Tensor scores;  // (B) float64 on the CPU: image scores
};

// One batch's maps and scores on their way to the host. On CUDA the copies are queued behind the
// batch's kernels, into page-locked memory, and an event marks their end; get() waits for that
// event only, so a caller can queue the next batch first and do its host work on this one while
// the device computes (`qfae eval`, `qfae infer`). On the CPU the output is ready at once.
class PendingOutput {
 public:
  PendingOutput() = default;
  // An output already on the host (a stand-in scorer's, in tests of what files the output).
  explicit PendingOutput(AnomalyOutput ready) : out_(std::move(ready)) {}
  // Blocks until this batch's output is on the host; returns it. Call once.
  AnomalyOutput get();

 private:
  friend class AnomalyScorer;
  AnomalyOutput out_;
  std::optional<c10::Event> copied_;
};

class AnomalyScorer {
 public:
  // Reads eval.pixel_reduction and eval.layer_reduction (UserError naming the key when one is
  // invalid), eval.smoothing_sigma (checked by config validation) and eval.precision. The maps
  // use eval.patch_sizes / eval.layers through the AnomalyModel's test distance.
  AnomalyScorer(AnomalyModel& model, const config::EvalConfig& eval);

  // images (B, 3, H, W) normalised, any device -> maps and scores, at eval.precision. No
  // gradient; the autoencoder is put in eval mode for the call and its previous mode restored.
  AnomalyOutput operator()(const torch::Tensor& images) { return submit(images).get(); }
  // The same without waiting: the device work and the copies back are queued (no host sync on
  // CUDA; pinned `images` are copied to the device asynchronously).
  PendingOutput submit(const torch::Tensor& images);
  // The same from a reconstruction already made (x and x_hat on the AnomalyModel's device), under
  // the caller's PrecisionScope.
  AnomalyOutput from_reconstruction(const torch::Tensor& x, const torch::Tensor& x_hat) {
    return submit_reconstruction(x, x_hat).get();
  }
  PendingOutput submit_reconstruction(const torch::Tensor& x, const torch::Tensor& x_hat);
  // eval.precision as it runs on the AnomalyModel's device.
  Precision precision() const { return precision_; }

 private:
  AnomalyModel& model_;
  loss::Reduction over_pixels_, over_layers_;
  double sigma_;
  Precision precision_;
};

// Readies an AnomalyModel for maps and scores: resolves eval.precision on its device (warning once
// when the device cannot run it) and holds the frozen networks in the matching dtype.
Precision prepare_for_scoring(AnomalyModel& model);

}  // namespace qfae::anomaly
