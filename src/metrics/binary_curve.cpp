// Input checks and the tie-grouped TP/FP curve shared by AUROC, AP and F1-max.
#include "qfae/metrics/binary_curve.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "qfae/util/error.h"

namespace qfae::metrics {

void check_binary_inputs(const std::vector<double>& scores, const std::vector<int>& labels,
                         const std::string& metric, bool need_both_classes) {
  if (scores.size() != labels.size()) {
    throw UserError(metric + ": got " + std::to_string(scores.size()) + " scores but " +
                    std::to_string(labels.size()) + " labels");
  }
  std::int64_t normal = 0;
  std::int64_t anomalous = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      throw UserError(metric + ": score " + std::to_string(i) + " is " +
                      (std::isnan(scores[i]) ? "NaN" : "infinite") + "; scores must be finite");
    }
    if (labels[i] == 0) {
      ++normal;
    } else if (labels[i] == 1) {
      ++anomalous;
    } else {
      throw UserError(metric + ": label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                      "; expected 0 (normal) or 1 (anomalous)");
    }
  }
  if (need_both_classes && (normal == 0 || anomalous == 0)) {
    throw UserError(metric + " needs normal and anomalous images; got " + std::to_string(normal) +
                    " normal, " + std::to_string(anomalous) + " anomalous");
  }
}

BinaryCurve binary_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  BinaryCurve curve;
  double tp = 0;
  double fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const size_t k = order[i];
    (labels[k] == 1 ? tp : fp) += 1;
    const bool last_of_tie = i + 1 == order.size() || scores[order[i + 1]] != scores[k];
    if (last_of_tie) {
      curve.thresholds.push_back(scores[k]);
      curve.tps.push_back(tp);
      curve.fps.push_back(fp);
    }
  }
  curve.positives = tp;
  curve.negatives = fp;
  return curve;
}

double auroc_from_curve(const BinaryCurve& curve) {
  double area = 0;
  double prev_fpr = 0;
  double prev_tpr = 0;
  for (size_t i = 0; i < curve.tps.size(); ++i) {
    const double fpr = curve.fps[i] / curve.negatives;
    const double tpr = curve.tps[i] / curve.positives;
    area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2;
    prev_fpr = fpr;
    prev_tpr = tpr;
  }
  return area;
}

double average_precision_from_curve(const BinaryCurve& curve) {
  double ap = 0;
  double prev_recall = 0;
  for (size_t i = 0; i < curve.tps.size(); ++i) {
    const double recall = curve.tps[i] / curve.positives;
    const double precision = curve.tps[i] / (curve.tps[i] + curve.fps[i]);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  return ap;
}

F1Max f1_max_from_curve(const BinaryCurve& curve) {
  F1Max best;
  best.threshold = curve.thresholds.empty() ? 0 : curve.thresholds.front();
  for (size_t i = 0; i < curve.tps.size(); ++i) {
    const double tp = curve.tps[i];
    const double denom = 2 * tp + curve.fps[i] + (curve.positives - tp);
    const double f1 = denom > 0 ? 2 * tp / denom : 0;
    if (f1 > best.f1) {
      best.f1 = f1;
      best.threshold = curve.thresholds[i];
    }
  }
  return best;
}

}  // namespace qfae::metrics
