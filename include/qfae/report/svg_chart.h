// Charts as inline SVG drawn from the data (axes, ticks, labels, legend), crisp at any zoom: line
// charts (curves, losses against step, metrics across seeds) and histograms (score distributions).
#pragma once
#include <string>
#include <vector>

namespace qfae::report {

struct Series {
  std::string label;      // legend text
  std::vector<double> x;  // same length as y; points with a non-finite coordinate are left out
  std::vector<double> y;
  bool line = true;   // a polyline through the points (data-series="<label>")
  bool dots = false;  // a circle at each point
};

// A vertical line at x with a label (the best checkpoint, the decision threshold).
struct Marker {
  double x = 0;
  std::string label;
};

// Where the legend goes inside the plot area (where the data leaves room). A chart with one
// series has no legend: its title names it.
enum class LegendAt { kTopRight, kBottomRight, kBottomLeft };

struct Chart {
  std::string id;  // the <svg> element's id ("" for none)
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<Marker> markers;
  bool unit_square = false;  // both axes 0..1 (ROC, PR)
  bool diagonal = false;     // the chance line y = x
  bool log_y = false;        // a log scale for y (losses); points with y <= 0 are left out
  int width = 440, height = 300;
  LegendAt legend = LegendAt::kTopRight;
};

// Tick values of a "nice" step (1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them; one tick when lo == hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// The chart as an <svg> element. A polyline's points attribute holds one "x,y" pair per point
// of its series that is drawn (finite, and > 0 on a log axis), in order.
std::string svg_chart(const Chart& chart);

// Overlaid histograms of each group's values over one set of `bins` equal bins spanning all of
// them, with the markers (e.g. the threshold) drawn as vertical lines. Groups are drawn in order,
// each with its legend entry and count.
struct HistogramGroup {
  std::string label;
  std::vector<double> values;
};
struct Histogram {
  std::string id, title, x_label;
  std::vector<HistogramGroup> groups;
  std::vector<Marker> markers;
  int bins = 30;
  int width = 440, height = 300;
};
std::string svg_histogram(const Histogram& h);

}  // namespace qfae::report
