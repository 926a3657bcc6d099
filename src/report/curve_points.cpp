// Curve points for curves.json and the report's charts (report/curve_points.h).
#include "qfae/report/curve_points.h"

#include <cmath>

namespace qfae::report {

CurvePoints roc_points(const metrics::BinaryCurve& c) {
  CurvePoints p{{0.0}, {0.0}};
  for (size_t i = 0; i < c.tps.size(); ++i) {
    p.x.push_back(c.fps[i] / c.negatives);
    p.y.push_back(c.tps[i] / c.positives);
  }
  return p;
}

CurvePoints pr_points(const metrics::BinaryCurve& c) {
  CurvePoints p{{0.0}, {1.0}};
  for (size_t i = 0; i < c.tps.size(); ++i) {
    p.x.push_back(c.tps[i] / c.positives);
    p.y.push_back(c.tps[i] / (c.tps[i] + c.fps[i]));
  }
  return p;
}

CurvePoints thin_curve(const CurvePoints& c, double resolution) {
  CurvePoints out;
  const size_t n = c.x.size();
  for (size_t i = 0; i < n; ++i) {
    const bool keep = i == 0 || i + 1 == n || std::abs(c.x[i] - out.x.back()) >= resolution ||
                      std::abs(c.y[i] - out.y.back()) >= resolution;
    if (!keep) continue;
    out.x.push_back(c.x[i]);
    out.y.push_back(c.y[i]);
  }
  return out;
}

nlohmann::json curves_json(const metrics::BinaryCurve& curve) {
  const auto roc = thin_curve(roc_points(curve));
  const auto pr = thin_curve(pr_points(curve));
  return {{"roc", {{"fpr", roc.x}, {"tpr", roc.y}}},
          {"pr", {{"recall", pr.x}, {"precision", pr.y}}}};
}

}  // namespace qfae::report
