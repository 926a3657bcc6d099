// The points of ROC and precision-recall curves as eval writes them to curves.json and the report
// draws them: each curve from its conventional end point, thinned to what a chart can show.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "qfae/metrics/binary_curve.h"

namespace qfae::report {

struct CurvePoints {
  std::vector<double> x, y;
};

// ROC: (0, 0), then (FPR, TPR) at each threshold. PR: (0, 1), then (recall, precision).
CurvePoints roc_points(const metrics::BinaryCurve& curve);
CurvePoints pr_points(const metrics::BinaryCurve& curve);

// The first and last points, and each point that is at least `resolution` away (on either axis)
// from the last one kept: at most about 2 / resolution points for a ROC curve, however many
// thresholds it has (a 65536-bin pixel curve, a test set of 10 000 images).
constexpr double kCurveResolution = 1e-3;
CurvePoints thin_curve(const CurvePoints& c, double resolution = kCurveResolution);

// {"roc": {"fpr": [...], "tpr": [...]}, "pr": {"recall": [...], "precision": [...]}}, thinned.
nlohmann::json curves_json(const metrics::BinaryCurve& curve);

}  // namespace qfae::report
