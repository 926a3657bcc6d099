// Image-level F1-max: the best F1 over all thresholds of the precision-recall curve.
#pragma once
#include <vector>

#include "qfae/metrics/binary_curve.h"

namespace qfae::metrics {

// Returns the maximal F1 = 2PR / (P + R) over thresholds "score >= t" and that t (the highest
// one reaching the maximum). Same as max over sklearn's precision_recall_curve. Same errors as
// auroc().
F1Max f1_max(const std::vector<double>& scores, const std::vector<int>& labels);

}  // namespace qfae::metrics
