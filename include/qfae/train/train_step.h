// One optimisation step of the Q-Former autoencoder (docs/model.md §4, §6): Adam over the
// trainable weights with the OneCycle learning rate and beta1 of the step, dropout seeded by the
// step, the perceptual loss under the phase's precision. Shared by Trainer and `qfae bench`, so
// the bench times exactly what training runs.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/precision.h"
#include "qfae/config/config.h"
#include "qfae/dist/gradient_reducer.h"
#include "qfae/train/one_cycle.h"

// Legend: B batch, H = W image side.
namespace qfae::train {

// The OneCycle options of train.* over `total_steps` optimizer steps.
OneCycleOptions one_cycle_options(const config::TrainConfig& train, int64_t total_steps);

class TrainStep {
 public:
  // Adam over `model`'s trainable autoencoder weights (train.lr, betas, weight_decay) and the
  // OneCycle schedule over `total_steps`. With `comm`, a data-parallel step: this rank's part of
  // each global batch of train.batch_size images, gradients averaged over the ranks.
  TrainStep(anomaly::AnomalyModel& model, int64_t total_steps, anomaly::Precision precision,
            dist::Communicator* comm = nullptr);

  // images (B, 3, H, W) normalised, on the model's device -> the loss (0-d float32, times
  // loss.weight; no host sync) after one Adam step with the schedule's values at `step` (0-based).
  // The autoencoder must be in training mode.
  // Data-parallel: `images` are rows rank * B/W .. of the global batch (B/W of them, or fewer
  // or none when data.on_bad_image: skip dropped some), the loss is this rank's, and the
  // gradient is the ranks' mean, each rank's loss weighted by its rows / (B/W).
  torch::Tensor operator()(const torch::Tensor& images, int64_t step);

  torch::optim::Adam& optimizer() { return optimizer_; }
  const OneCycle& schedule() const { return schedule_; }
  // Data-parallel only (else null): the buckets and their last wait.
  const dist::GradientReducer* reducer() const { return reducer_.get(); }

 private:
  anomaly::AnomalyModel& model_;
  anomaly::Precision precision_;
  torch::optim::Adam optimizer_;
  OneCycle schedule_;
  dist::Communicator* comm_;
  std::unique_ptr<dist::GradientReducer> reducer_;
};

}  // namespace qfae::train
