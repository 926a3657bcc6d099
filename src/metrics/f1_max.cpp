// Image F1-max: checked inputs, then the best F1 over the tie-grouped curve.
#include "qfae/metrics/f1_max.h"

namespace qfae::metrics {

F1Max f1_max(const std::vector<double>& scores, const std::vector<int>& labels) {
  check_binary_inputs(scores, labels, "image F1-max");
  return f1_max_from_curve(binary_curve(scores, labels));
}

}  // namespace qfae::metrics
