// Image-level AUROC, identical to sklearn.metrics.roc_auc_score on binary labels (ties grouped).
#pragma once
#include <vector>

namespace qfae::metrics {

// labels: 1 anomalous, 0 normal. Constant scores give 0.5. Throws qfae::UserError for NaN or
// infinite scores, labels other than 0/1, mismatched sizes, or when one class is missing
// ("image AUROC needs normal and anomalous images; got 12 normal, 0 anomalous").
double auroc(const std::vector<double>& scores, const std::vector<int>& labels);

}  // namespace qfae::metrics
