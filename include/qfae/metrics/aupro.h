// AUPRO (BMAD's "PRO"): area under the per-region-overlap curve for FPR in [0, limit], / limit.
#pragma once
#include <vector>

namespace qfae::metrics {

// fpr, pro: the curve's points in order of decreasing threshold (FPR non-decreasing), starting
// at the highest threshold; (0, 0) is prepended when the first point is not at FPR 0. Trapezoids
// up to FPR = limit, with PRO interpolated linearly at exactly `limit`; the area is divided by
// `limit` (not by the last FPR reached), so a perfect map scores 1. Points past `limit` are
// ignored; a curve ending before `limit` (it cannot when the last point has FPR 1) is integrated
// as far as it goes. TORCH_CHECKs that sizes match, FPR is non-decreasing and 0 < limit <= 1.
double pro_auc(const std::vector<double>& fpr, const std::vector<double>& pro, double limit = 0.3);

}  // namespace qfae::metrics
