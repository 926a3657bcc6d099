// Running min/max of finite anomaly-map scores.
#include "qfae/metrics/score_range.h"

#include <algorithm>

namespace qfae::metrics {

void ScoreRange::add(const torch::Tensor& maps) {
  const auto m = maps.detach().to(torch::kCPU, torch::kDouble).flatten();
  const auto finite = m.masked_select(torch::isfinite(m));
  if (finite.numel() == 0) return;
  min_ = std::min(min_, finite.min().item<double>());
  max_ = std::max(max_, finite.max().item<double>());
}

}  // namespace qfae::metrics
