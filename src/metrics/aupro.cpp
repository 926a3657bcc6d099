// Trapezoidal PRO-vs-FPR area up to an FPR limit with exact interpolation at the limit.
#include "qfae/metrics/aupro.h"

#include <torch/torch.h>

namespace qfae::metrics {

double pro_auc(const std::vector<double>& fpr, const std::vector<double>& pro, double limit) {
  TORCH_CHECK(fpr.size() == pro.size(), "pro_auc: ", fpr.size(), " FPR values but ", pro.size(),
              " PRO values");
  TORCH_CHECK(limit > 0 && limit <= 1, "pro_auc: limit must be in (0, 1], got ", limit);
  double prev_f = 0;
  double prev_p = 0;
  double area = 0;
  for (size_t i = 0; i < fpr.size(); ++i) {
    const double f = fpr[i];
    const double p = pro[i];
    TORCH_CHECK(f >= prev_f, "pro_auc: FPR must be non-decreasing, got ", f, " after ", prev_f);
    if (f >= limit) {
      const double p_limit =
          f > prev_f ? prev_p + (limit - prev_f) / (f - prev_f) * (p - prev_p) : p;
      area += (limit - prev_f) * (prev_p + p_limit) / 2;
      return area / limit;
    }
    area += (f - prev_f) * (prev_p + p) / 2;
    prev_f = f;
    prev_p = p;
  }
  return area / limit;
}

}  // namespace qfae::metrics
