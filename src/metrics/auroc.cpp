// Image AUROC: checked inputs, then the trapezoid over the tie-grouped ROC.
#include "qfae/metrics/auroc.h"

#include "qfae/metrics/binary_curve.h"

namespace qfae::metrics {

double auroc(const std::vector<double>& scores, const std::vector<int>& labels) {
  check_binary_inputs(scores, labels, "image AUROC");
  return auroc_from_curve(binary_curve(scores, labels));
}

}  // namespace qfae::metrics
