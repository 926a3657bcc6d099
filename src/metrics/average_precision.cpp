// Image average precision: checked inputs, then the step sum over the tie-grouped PR curve.
#include "qfae/metrics/average_precision.h"

#include "qfae/metrics/binary_curve.h"

namespace qfae::metrics {

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels) {
  check_binary_inputs(scores, labels, "image AP");
  return average_precision_from_curve(binary_curve(scores, labels));
}

}  // namespace qfae::metrics
