// Adam + OneCycle on the perceptual loss, one step at a time.
#include "qfae/train/train_step.h"

#include <tuple>
#include <vector>

namespace qfae::train {
namespace {

// Dropout draws of step s come from this seed, so a resumed run repeats them exactly.
uint64_t step_seed(int64_t seed, int64_t step) {
  uint64_t z = static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<torch::Tensor> trainable_parameters(anomaly::AnomalyModel& model) {
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model.autoencoder()->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  return trainable;
}

}  // namespace

OneCycleOptions one_cycle_options(const config::TrainConfig& t, int64_t total_steps) {
  OneCycleOptions o;
  o.max_lr = t.lr;
  o.total_steps = total_steps;
  o.pct_start = t.warmup;
  o.div_factor = t.div_factor;
  o.final_div_factor = t.final_div_factor;
  o.base_momentum = t.beta1_min;
  o.max_momentum = t.beta1_max;
  return o;
}

TrainStep::TrainStep(anomaly::AnomalyModel& model, int64_t total_steps,
                     anomaly::Precision precision, dist::Communicator* comm)
    : model_(model),
      precision_(precision),
      optimizer_(trainable_parameters(model),
                 torch::optim::AdamOptions(model.config().train.lr)
                     .betas(std::make_tuple(model.config().train.beta1_max,
                                            model.config().train.beta2))
                     .weight_decay(model.config().train.weight_decay)),
      schedule_(one_cycle_options(model.config().train, total_steps)),
      comm_(comm) {
  if (comm_ && comm_->size() > 1) {
    reducer_ = std::make_unique<dist::GradientReducer>(*comm_, trainable_parameters(model));
  }
}

torch::Tensor TrainStep::operator()(const torch::Tensor& images, int64_t step) {
  const auto& cfg = model_.config();
  // Process-wide RNG on purpose: LibTorch's dropout draws from the default generator only, so
  // seeding it per step is what makes a resumed run repeat the same draws.
  torch::manual_seed(step_seed(cfg.train.seed, step));
  const auto v = schedule_.at(step);
  for (auto& group : optimizer_.param_groups()) {
    auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
    o.lr(v.lr);
    o.betas(std::make_tuple(v.beta1, cfg.train.beta2));
  }
  const int64_t rows = images.defined() ? images.size(0) : 0;
  const int64_t part = reducer_ ? cfg.train.batch_size / comm_->size() : rows;
  if (!reducer_) optimizer_.zero_grad();
  if (reducer_) {
    reducer_->prepare();  // clears the gradients
    model_.autoencoder()->set_batch_shard({comm_->rank() * part, cfg.train.batch_size});
  }
  torch::Tensor loss = torch::zeros({}, torch::TensorOptions().device(model_.device()));
  if (rows > 0) {
    {
      anomaly::PrecisionScope scope(precision_, model_.device());
      const auto x_hat = model_.reconstruct(images);
      loss = model_.training_loss(images, x_hat).to(torch::kFloat32) * cfg.loss.weight;
    }
    if (rows == part) {
      loss.backward();
    } else {  // data-parallel with skipped images: weighted by the rows this rank has
      (loss * (static_cast<double>(rows) / static_cast<double>(part))).backward();
    }
  }
  if (reducer_) reducer_->finish();
  optimizer_.step();
  return loss.detach();
}

}  // namespace qfae::train
