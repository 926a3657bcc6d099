// First pass for the pixel histogram: the [lo, hi] range of all anomaly-map scores.
#pragma once
#include <torch/torch.h>

#include <limits>

namespace qfae::metrics {

// Feed every batch of maps, then hand lo()/hi() to PixelCurveOptions. NaN and infinite values are
// ignored here (PixelCurveAccumulator::add reports them). When all scores are equal (or none were
// seen) the range is widened to [lo, lo + 1] so the histogram stays valid.
class ScoreRange {
 public:
  void add(const torch::Tensor& maps);
  bool empty() const { return !(min_ <= max_); }
  double lo() const { return empty() ? 0.0 : min_; }
  double hi() const { return empty() ? 1.0 : (max_ > min_ ? max_ : min_ + 1.0); }

 private:
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace qfae::metrics
