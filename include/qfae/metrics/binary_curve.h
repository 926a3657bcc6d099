// The shared core of the ranking metrics: input checks and scikit-learn's "binary classifier
// curve" (true and false positive counts at each distinct score, highest score first).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qfae::metrics {

// Counts at each distinct threshold t (descending): a sample is predicted positive when
// score >= t, exactly as in scikit-learn. Tied scores form one threshold.
struct BinaryCurve {
  std::vector<double> thresholds;  // distinct scores, descending
  std::vector<double> tps;         // cumulative true positives at each threshold
  std::vector<double> fps;         // cumulative false positives at each threshold
  double positives = 0;            // total anomalous samples
  double negatives = 0;            // total normal samples
};

// Throws qfae::UserError naming `metric` when sizes differ, a label is not 0/1, a score is NaN or
// infinite, or (when `need_both_classes`) one class is missing: "image AUROC needs normal and
// anomalous images; got 12 normal, 0 anomalous".
void check_binary_inputs(const std::vector<double>& scores, const std::vector<int>& labels,
                         const std::string& metric, bool need_both_classes = true);

// Sorts the scores (descending, stable) and groups ties. Inputs must already be checked.
BinaryCurve binary_curve(const std::vector<double>& scores, const std::vector<int>& labels);

// Area under the ROC (trapezoid through (0,0) and every threshold's (FPR, TPR)), as
// sklearn.metrics.roc_auc_score. Needs positives > 0 and negatives > 0.
double auroc_from_curve(const BinaryCurve& curve);

// Average precision sum_n (R_n - R_{n-1}) P_n over thresholds (descending, R_0 = 0), as
// sklearn.metrics.average_precision_score. Needs positives > 0.
double average_precision_from_curve(const BinaryCurve& curve);

// Maximum over thresholds of F1 = 2TP / (2TP + FP + FN) and the threshold reaching it (the
// highest such threshold on ties); F1 is 0 where TP = 0.
struct F1Max {
  double f1 = 0;
  double threshold = 0;
};
F1Max f1_max_from_curve(const BinaryCurve& curve);

}  // namespace qfae::metrics
