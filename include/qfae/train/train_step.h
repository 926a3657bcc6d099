// One optimisation step of the Q-Former autoencoder (MODEL.md §4): Adam over the trainable
// weights with the OneCycle learning rate and beta1 of the step, dropout seeded by the step, the
// perceptual loss under the phase's precision. Shared by Trainer and `qfae bench`, so the bench
// times exactly what training runs.
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "qfae/config/config.h"
#include "qfae/pipeline/anomaly_model.h"
#include "qfae/pipeline/precision.h"
#include "qfae/train/one_cycle.h"

// Legend: B batch, H = W image side.
namespace qfae::train {

// The OneCycle options of train.* over `total_steps` optimizer steps.
OneCycleOptions one_cycle_options(const config::TrainConfig& train, int64_t total_steps);

class TrainStep {
 public:
  // Adam over `model`'s trainable autoencoder weights (train.lr, betas, weight_decay) and the
  // OneCycle schedule over `total_steps`.
  TrainStep(pipeline::AnomalyModel& model, int64_t total_steps, pipeline::Precision precision);

  // images (B, 3, H, W) normalised, on the model's device -> the loss (0-d float32, times
  // loss.weight; no host sync) after one Adam step with the schedule's values at `step` (0-based).
  // The autoencoder must be in training mode.
  torch::Tensor operator()(const torch::Tensor& images, int64_t step);

  torch::optim::Adam& optimizer() { return optimizer_; }
  const OneCycle& schedule() const { return schedule_; }

 private:
  pipeline::AnomalyModel& model_;
  pipeline::Precision precision_;
  torch::optim::Adam optimizer_;
  OneCycle schedule_;
};

}  // namespace qfae::train
