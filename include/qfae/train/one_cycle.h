// The OneCycle learning-rate and beta1 schedule, exactly as PyTorch's OneCycleLR (two phases,
// cosine annealing, cycle_momentum) computes it, as a pure function of the step.
#pragma once
#include <cstdint>

namespace qfae::train {

struct OneCycleOptions {
  double max_lr = 8e-5;
  int64_t total_steps = 1;
  double pct_start = 0.15;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  double base_momentum = 0.85;  // beta1 at the peak of the learning rate
  double max_momentum = 0.95;   // beta1 at the start and the end
};

struct OneCycleValue {
  double lr;
  double beta1;
};

class OneCycle {
 public:
  // A warm-up of exactly one step (pct_start x total_steps == 1) is a UserError stating so; the
  // caller names the config key. Other invalid options are std::invalid_argument.
  explicit OneCycle(const OneCycleOptions& options);
  // Values for the optimizer step with 0-based index `step` (PyTorch's scheduler.last_epoch);
  // step 0 is the first update. Throws std::out_of_range past total_steps, as PyTorch does.
  OneCycleValue at(int64_t step) const;
  const OneCycleOptions& options() const { return options_; }

 private:
  OneCycleOptions options_;
};

}  // namespace qfae::train
