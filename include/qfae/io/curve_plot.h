// ROC and precision-recall figures as PNG: unit-square axes with a grid, one polyline per series,
// a legend. Drawn with OpenCV so no plotting stack is needed.
#pragma once
#include <string>
#include <vector>

namespace qfae::io {

struct CurveSeries {
  std::string label;        // legend text, e.g. "image (AUROC 0.912)"
  std::vector<double> x;    // in [0, 1]
  std::vector<double> y;    // in [0, 1], same length as x
};

struct CurvePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool diagonal = false;  // draw the chance line y = x (ROC)
  std::vector<CurveSeries> series;
};

// Writes a 640 x 560 RGB PNG, creating parent folders. Series with mismatched x/y lengths are a
// std::invalid_argument; UserError naming the file when it cannot be written.
void write_curve_plot(const std::string& path, const CurvePlot& plot);

}  // namespace qfae::io
