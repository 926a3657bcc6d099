// OneCycle schedule: PyTorch's OneCycleLR get_lr() with anneal_strategy='cos', three_phase=False.
#include "qfae/train/one_cycle.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "qfae/util/error.h"

namespace qfae::train {
namespace {

// PyTorch's _annealing_cos: from start (pct 0) to end (pct 1) along half a cosine.
double anneal_cos(double start, double end, double pct) {
  const double cos_out = std::cos(M_PI * pct) + 1.0;
  return end + (start - end) / 2.0 * cos_out;
}

}  // namespace

OneCycle::OneCycle(const OneCycleOptions& options) : options_(options) {
  if (options_.total_steps < 1) throw std::invalid_argument("OneCycle: total_steps must be >= 1");
  if (!(options_.pct_start > 0 && options_.pct_start < 1)) {
    throw std::invalid_argument("OneCycle: pct_start must lie in (0, 1)");
  }
  // The warm-up's cosine divides by its length, pct_start x total_steps - 1: zero for a warm-up
  // of exactly one step, where PyTorch raises ZeroDivisionError (step 0's rate would be NaN).
  if (options_.pct_start * static_cast<double>(options_.total_steps) - 1.0 == 0.0) {
    std::ostringstream fact;
    fact << "a warm-up of " << options_.pct_start << " x " << options_.total_steps
         << " steps is exactly 1 step, over which OneCycle cannot anneal (PyTorch's OneCycleLR "
            "divides by zero there); expected a fraction giving more or less than 1 step";
    throw UserError(fact.str());
  }
}

OneCycleValue OneCycle::at(int64_t step) const {
  if (step < 0 || step > options_.total_steps) {
    throw std::out_of_range("OneCycle: step " + std::to_string(step) + " outside [0, " +
                            std::to_string(options_.total_steps) + "]");
  }
  const double initial_lr = options_.max_lr / options_.div_factor;
  const double min_lr = initial_lr / options_.final_div_factor;
  // Phase ends as PyTorch computes them (float arithmetic, not rounded).
  const double end1 = options_.pct_start * static_cast<double>(options_.total_steps) - 1.0;
  const double end2 = static_cast<double>(options_.total_steps) - 1.0;
  const double s = static_cast<double>(step);
  if (s <= end1) {
    const double pct = s / end1;
    return {anneal_cos(initial_lr, options_.max_lr, pct),
            anneal_cos(options_.max_momentum, options_.base_momentum, pct)};
  }
  const double pct = (s - end1) / (end2 - end1);
  return {anneal_cos(options_.max_lr, min_lr, pct),
          anneal_cos(options_.base_momentum, options_.max_momentum, pct)};
}

}  // namespace qfae::train
