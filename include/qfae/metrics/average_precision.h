// Image-level average precision, identical to sklearn.metrics.average_precision_score.
#pragma once
#include <vector>

namespace qfae::metrics {

// AP = sum_n (R_n - R_{n-1}) P_n over distinct thresholds, highest first (no interpolation).
// Constant scores give the positive rate. Same errors as auroc() (both classes are required:
// with no normal image AP is trivially 1 and would hide a data problem).
double average_precision(const std::vector<double>& scores, const std::vector<int>& labels);

}  // namespace qfae::metrics
