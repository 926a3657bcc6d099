// Line charts and histograms as inline SVG (report/svg_chart.h).
#include "qfae/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "qfae/report/html.h"

namespace qfae::report {
namespace {

constexpr double kLeft = 58, kRight = 14, kTop = 30, kBottom = 46;

std::string num(double v, const char* f = "%.2f") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A tick label: as few digits as the step needs.
std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) return num(v, "%.0e");
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 6), v);
  return buf;
}

// The plot area's mapping from data to pixels.
struct Frame {
  double x0, x1, y0, y1;  // data range
  double left, right, top, bottom;
  bool log_y = false;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const {
    const double t = log_y ? (std::log10(y) - y0) / (y1 - y0) : (y - y0) / (y1 - y0);
    return bottom - t * (bottom - top);
  }
};

void pad_range(double& lo, double& hi) {
  if (!(hi > lo)) {
    const double d = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
}

std::string open_svg(const std::string& id, const std::string& title, int w, int h) {
  std::string s = "<svg class=\"chart\"";
  if (!id.empty()) s += " id=\"" + escape(id) + "\"";
  s += " viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
       "\" role=\"img\" aria-label=\"" + escape(title) + "\" xmlns=\"http://www.w3.org/2000/svg\">";
  s += "<text class=\"title\" x=\"" + num(w / 2.0) + "\" y=\"18\">" + escape(title) + "</text>";
  return s;
}

// Axes, grid, ticks and labels; `h` is the chart's height (the x label sits at its bottom).
std::string axes(const Frame& f, const std::vector<double>& xt, const std::vector<double>& yt,
                 const std::string& x_label, const std::string& y_label, int h) {
  std::string s = "<g class=\"axes\">";
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double x : xt) {
    const double p = f.px(x);
    s += "<line class=\"grid\" x1=\"" + num(p) + "\" y1=\"" + num(f.top) + "\" x2=\"" + num(p) +
         "\" y2=\"" + num(f.bottom) + "\"/>";
    s += "<text class=\"tick\" x=\"" + num(p) + "\" y=\"" + num(f.bottom + 14) +
         "\" text-anchor=\"middle\">" + tick_label(x, xstep) + "</text>";
  }
  for (double y : yt) {
    const double p = f.py(y);
    const std::string label =
        f.log_y ? tick_label(y, y) : tick_label(y, yt.size() > 1 ? yt[1] - yt[0] : 1);
    s += "<line class=\"grid\" x1=\"" + num(f.left) + "\" y1=\"" + num(p) + "\" x2=\"" +
         num(f.right) + "\" y2=\"" + num(p) + "\"/>";
    s += "<text class=\"tick\" x=\"" + num(f.left - 5) + "\" y=\"" + num(p + 3.5) +
         "\" text-anchor=\"end\">" + label + "</text>";
  }
  s += "<rect class=\"frame\" x=\"" + num(f.left) + "\" y=\"" + num(f.top) + "\" width=\"" +
       num(f.right - f.left) + "\" height=\"" + num(f.bottom - f.top) + "\"/>";
  s += "<text class=\"label\" x=\"" + num((f.left + f.right) / 2) + "\" y=\"" + num(h - 8.0) +
       "\" text-anchor=\"middle\">" + escape(x_label) + "</text>";
  s += "<text class=\"label\" transform=\"translate(14," + num((f.top + f.bottom) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + escape(y_label) + "</text>";
  return s + "</g>";
}

std::string markers(const Frame& f, const std::vector<Marker>& ms) {
  std::string s;
  for (const auto& m : ms) {
    if (!std::isfinite(m.x) || m.x < f.x0 || m.x > f.x1) continue;
    const double p = f.px(m.x);
    s += "<g class=\"marker\"><line x1=\"" + num(p) + "\" y1=\"" + num(f.top) + "\" x2=\"" +
         num(p) + "\" y2=\"" + num(f.bottom) + "\"/><text x=\"" + num(p + 3) + "\" y=\"" +
         num(f.top + 11) + "\">" + escape(m.label) + "</text></g>";
  }
  return s;
}

std::string legend(const std::vector<std::string>& labels, const Frame& f,
                   LegendAt at = LegendAt::kTopRight) {
  std::string s = "<g class=\"legend\">";
  const double x = at == LegendAt::kBottomLeft ? f.left + 8 : f.right - 150;
  const double first = at == LegendAt::kTopRight
                           ? f.top + 14
                           : f.bottom - 8 - 15 * static_cast<double>(labels.size() - 1);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double y = first + 15 * static_cast<double>(i);
    const std::string cls = "s" + std::to_string(i % 6);
    s += "<rect class=\"swatch " + cls + "\" x=\"" + num(x) + "\" y=\"" + num(y - 8) +
         "\" width=\"10\" height=\"10\"/><text x=\"" + num(x + 14) + "\" y=\"" + num(y + 1) +
         "\">" + escape(labels[i]) + "</text>";
  }
  return s + "</g>";
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string svg_chart(const Chart& c) {
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (!c.unit_square) {
    x0 = y0 = std::numeric_limits<double>::infinity();
    x1 = y1 = -x0;
    for (const auto& s : c.series) {
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (c.log_y && s.y[i] <= 0)) continue;
        x0 = std::min(x0, s.x[i]);
        x1 = std::max(x1, s.x[i]);
        const double y = c.log_y ? std::log10(s.y[i]) : s.y[i];
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
    }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    pad_range(x0, x1);
    pad_range(y0, y1);
    if (c.log_y) {
      y0 = std::floor(y0 * 10) / 10;
      y1 = std::ceil(y1 * 10) / 10;
    } else {
      const double pad = (y1 - y0) * 0.05;
      y0 -= pad;
      y1 += pad;
    }
  }
  Frame f{x0, x1, y0, y1, kLeft, c.width - kRight, kTop, c.height - kBottom, c.log_y};
  std::vector<double> yt;
  if (c.log_y) {
    for (double e = std::ceil(y0); e <= y1 + 1e-9; e += 1) yt.push_back(std::pow(10.0, e));
    if (yt.size() < 2) {  // less than a decade: 1, 2, 5 steps
      yt.clear();
      for (double t : nice_ticks(std::pow(10.0, y0), std::pow(10.0, y1), 4))
        if (t > 0) yt.push_back(t);
    }
  } else {
    yt = nice_ticks(y0, y1, 5);
  }
  std::string s = open_svg(c.id, c.title, c.width, c.height);
  s += axes(f, nice_ticks(x0, x1, 5), yt, c.x_label, c.y_label, c.height);
  if (c.diagonal) {
    s += "<line class=\"chance\" x1=\"" + num(f.px(0)) + "\" y1=\"" + num(f.py(0)) + "\" x2=\"" +
         num(f.px(1)) + "\" y2=\"" + num(f.py(1)) + "\"/>";
  }
  s += markers(f, c.markers);
  std::vector<std::string> labels;
  for (size_t k = 0; k < c.series.size(); ++k) {
    const auto& ser = c.series[k];
    const std::string cls = "s" + std::to_string(k % 6);
    std::string points, dots;
    for (size_t i = 0; i < ser.x.size() && i < ser.y.size(); ++i) {
      if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i]) || (c.log_y && ser.y[i] <= 0))
        continue;
      const std::string px = num(f.px(ser.x[i])), py = num(f.py(ser.y[i]));
      if (!points.empty()) points += ' ';
      points += px + "," + py;
      if (ser.dots) dots += "<circle cx=\"" + px + "\" cy=\"" + py + "\" r=\"3\"/>";
    }
    if (ser.line) {
      s += "<polyline class=\"series " + cls + "\" data-series=\"" + escape(ser.label) +
           "\" points=\"" + points + "\"/>";
    }
    if (ser.dots)
      s += "<g class=\"dots " + cls + "\" data-series=\"" + escape(ser.label) + "\">" + dots +
           "</g>";
    labels.push_back(ser.label);
  }
  if (labels.size() > 1) s += legend(labels, f, c.legend);
  return s + "</svg>\n";
}

std::string svg_histogram(const Histogram& h) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& g : h.groups) {
    for (double v : g.values) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  pad_range(lo, hi);
  const int bins = std::max(1, h.bins);
  const double width = (hi - lo) / bins;
  std::vector<std::vector<int>> counts(h.groups.size(), std::vector<int>(bins, 0));
  int most = 1;
  for (size_t k = 0; k < h.groups.size(); ++k) {
    for (double v : h.groups[k].values) {
      if (!std::isfinite(v)) continue;
      const int b = std::clamp(static_cast<int>((v - lo) / width), 0, bins - 1);
      most = std::max(most, ++counts[k][b]);
    }
  }
  Frame f{lo, hi, 0, most * 1.08, kLeft, h.width - kRight, kTop, h.height - kBottom, false};
  std::string s = open_svg(h.id, h.title, h.width, h.height);
  s += axes(f, nice_ticks(lo, hi, 5), nice_ticks(0, most, 4), h.x_label, "images", h.height);
  std::vector<std::string> labels;
  for (size_t k = 0; k < h.groups.size(); ++k) {
    s += "<g class=\"bars s" + std::to_string(k % 6) + "\" data-group=\"" +
         escape(h.groups[k].label) + "\">";
    for (int b = 0; b < bins; ++b) {
      if (counts[k][b] == 0) continue;
      const double x = f.px(lo + b * width), y = f.py(counts[k][b]);
      s += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
           num(f.px(lo + (b + 1) * width) - x) + "\" height=\"" + num(f.bottom - y) + "\"><title>" +
           std::to_string(counts[k][b]) + "</title></rect>";
    }
    s += "</g>";
    labels.push_back(h.groups[k].label + " (" + std::to_string(h.groups[k].values.size()) + ")");
  }
  s += markers(f, h.markers);
  s += legend(labels, f);
  return s + "</svg>\n";
}

}  // namespace qfae::report
