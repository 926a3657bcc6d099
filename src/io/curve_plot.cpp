// ROC / PR curve figures drawn with OpenCV primitives.
#include "qfae/io/curve_plot.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "png_mat.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::io {

void write_curve_plot(const std::string& path, const CurvePlot& plot) {
  const int width = 640, height = 560;
  const int left = 70, right = 20, top = 40, bottom = 60;
  const int pw = width - left - right, ph = height - top - bottom;
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  auto to_px = [&](double x, double y) {
    x = std::clamp(x, 0.0, 1.0);
    y = std::clamp(y, 0.0, 1.0);
    return cv::Point(left + static_cast<int>(x * pw + 0.5), top + ph - static_cast<int>(y * ph + 0.5));
  };
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  const cv::Scalar black(0, 0, 0), grey(220, 220, 220);
  for (int i = 0; i <= 10; ++i) {  // grid and tick labels every 0.1
    const double v = i / 10.0;
    cv::line(canvas, to_px(v, 0), to_px(v, 1), grey, 1);
    cv::line(canvas, to_px(0, v), to_px(1, v), grey, 1);
    if (i % 2 == 0) {
      char text[8];
      std::snprintf(text, sizeof text, "%.1f", v);
      cv::putText(canvas, text, to_px(v, 0) + cv::Point(-10, 18), font, 0.4, black, 1, cv::LINE_AA);
      cv::putText(canvas, text, to_px(0, v) + cv::Point(-30, 4), font, 0.4, black, 1, cv::LINE_AA);
    }
  }
  cv::rectangle(canvas, to_px(0, 1), to_px(1, 0), black, 1);
  if (plot.diagonal) cv::line(canvas, to_px(0, 0), to_px(1, 1), cv::Scalar(160, 160, 160), 1);
  int baseline = 0;
  const auto title_size = cv::getTextSize(plot.title, font, 0.6, 1, &baseline);
  cv::putText(canvas, plot.title, {left + (pw - title_size.width) / 2, 18}, font, 0.6, black, 1,
              cv::LINE_AA);
  cv::putText(canvas, plot.x_label, {left + pw / 2 - 60, height - 18}, font, 0.5, black, 1,
              cv::LINE_AA);
  cv::putText(canvas, plot.y_label, {6, top - 6}, font, 0.45, black, 1, cv::LINE_AA);

  const cv::Scalar colours[] = {{200, 80, 20}, {30, 30, 210}, {40, 150, 40}, {150, 40, 150}};
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const auto& series = plot.series[s];
    if (series.x.size() != series.y.size()) {
      throw std::invalid_argument("write_curve_plot: series '" + series.label +
                                  "' has x and y of different lengths");
    }
    const auto colour = colours[s % 4];
    std::vector<cv::Point> points;
    points.reserve(series.x.size());
    for (size_t i = 0; i < series.x.size(); ++i) {
      const auto p = to_px(series.x[i], series.y[i]);
      if (points.empty() || points.back() != p) points.push_back(p);  // thins dense curves
    }
    if (!points.empty()) cv::polylines(canvas, points, false, colour, 2, cv::LINE_AA);
    const cv::Point at(left + 12, top + ph - 14 - 20 * static_cast<int>(plot.series.size() - 1 - s));
    cv::line(canvas, at + cv::Point(0, -4), at + cv::Point(24, -4), colour, 2, cv::LINE_AA);
    cv::putText(canvas, series.label, at + cv::Point(30, 0), font, 0.45, black, 1, cv::LINE_AA);
  }
  write_png_mat(path, canvas);
}

}  // namespace qfae::io
