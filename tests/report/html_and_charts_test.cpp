// The report's building blocks against hand-worked cases: escaping, script-safe JSON, numbers,
// tick steps, SVG points and histogram counts, curve points and their thinning.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "qfae/metrics/binary_curve.h"
#include "qfae/report/curve_points.h"
#include "qfae/report/html.h"
#include "qfae/report/svg_chart.h"

using nlohmann::json;
namespace report = qfae::report;

namespace {

// The "x,y" pairs of the first polyline whose data-series is `series`.
std::vector<std::string> polyline_points(const std::string& svg, const std::string& series) {
  const std::string key = "data-series=\"" + series + "\" points=\"";
  const auto at = svg.find(key);
  if (at == std::string::npos) return {};
  const auto begin = at + key.size();
  std::string points = svg.substr(begin, svg.find('"', begin) - begin);
  std::vector<std::string> out;
  std::regex pair("[^ ]+");
  for (auto it = std::sregex_iterator(points.begin(), points.end(), pair);
       it != std::sregex_iterator(); ++it) {
    out.push_back(it->str());
  }
  return out;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(ReportHtml, EscapesMarkupCharactersAndKeepsUtf8) {
  EXPECT_EQ(report::escape("a<b>&\"c'd ü名"), "a&lt;b&gt;&amp;&quot;c&#39;d ü名");
  EXPECT_EQ(report::escape("plain"), "plain");
}

TEST(ReportHtml, ScriptJsonCannotEndItsScriptAndReadsBackTheSame) {
  const json j = {{"name", "</script><script>alert(1)</script><!-- & ü"}, {"v", {1, 2.5}}};
  const std::string text = report::script_json(j);
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_EQ(text.find('&'), std::string::npos) << text;
  EXPECT_EQ(json::parse(text), j);
}

TEST(ReportHtml, NumbersWithTheirDecimalsAndADashWhenUndefined) {
  EXPECT_EQ(report::number(0.81236, 4), "0.8124");
  EXPECT_EQ(report::number(25, 0), "25");
  EXPECT_EQ(report::number(std::nan(""), 4), "–");
  EXPECT_EQ(report::number(INFINITY, 2), "–");
}

TEST(ReportHtml, TheDocumentHoldsItsStyleScriptAndDataInline) {
  report::Page page;
  page.title = "t <1>";
  page.body = "<p>body</p>";
  page.data = {{"rows", json::array()}};
  const std::string html = report::html_document(page);
  EXPECT_NE(html.find("<title>t &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("id=\"qfae-data\""), std::string::npos);
  // Nothing is fetched: no external script, style sheet or font.
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos) << "only the SVG namespace may name a URL";
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("http-equiv=\"refresh\""), std::string::npos);
  page.refresh_s = 60;
  EXPECT_NE(report::html_document(page).find("content=\"60\""), std::string::npos);
}

TEST(SvgChart, NiceTicksStepByOneTwoOrFiveTimesAPowerOfTen) {
  // [0, 1] in about 5 steps: raw step 0.2 -> 2 x 0.1.
  const auto a = report::nice_ticks(0, 1, 5);
  ASSERT_EQ(a.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], 0.2 * static_cast<double>(i), 1e-12);
  // [3, 97]: raw 18.8 -> 2 x 10 = 20; multiples of 20 inside: 20, 40, 60, 80.
  EXPECT_EQ(report::nice_ticks(3, 97, 5), (std::vector<double>{20, 40, 60, 80}));
  EXPECT_EQ(report::nice_ticks(5, 5), (std::vector<double>{5}));
  EXPECT_TRUE(report::nice_ticks(0, NAN).empty());
}

TEST(SvgChart, APolylineHasOnePairPerDrawnPoint) {
  report::Chart c;
  c.series = {{"a<b>", {0, 1, 2, 3}, {1, NAN, 3, 4}}};
  const std::string svg = report::svg_chart(c);
  EXPECT_EQ(polyline_points(svg, "a&lt;b&gt;").size(), 3u) << "the NaN point is left out";
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  c.log_y = true;
  c.series = {{"loss", {0, 1, 2, 3}, {1, 0, -1, 10}}};
  EXPECT_EQ(polyline_points(report::svg_chart(c), "loss").size(), 2u) << "y <= 0 on a log axis";
}

TEST(SvgChart, TheUnitSquareFillsThePlotArea) {
  // 440 x 300 with margins left 58, right 14, top 30, bottom 46: x 0..1 -> 58..426 and
  // y 0..1 -> 254..30.
  report::Chart c;
  c.unit_square = true;
  c.series = {{"image", {0, 0.5, 1}, {0, 0.25, 1}}};
  EXPECT_EQ(polyline_points(report::svg_chart(c), "image"),
            (std::vector<std::string>{"58.00,254.00", "242.00,198.00", "426.00,30.00"}));
}

TEST(SvgChart, HistogramCountsEachGroupInSharedBins) {
  // Values 1, 2, 3 and 3 over [1, 3] in 2 bins of width 1: [1, 2) and [2, 3] (the maximum goes
  // in the last bin). First group: 1 | 2; second: 0 | 1.
  report::Histogram h;
  h.bins = 2;
  h.groups = {{"normal", {1, 2, 3}}, {"anomalous", {3}}};
  const std::string svg = report::svg_histogram(h);
  const auto first = svg.find("data-group=\"normal\""),
             second = svg.find("data-group=\"anomalous\"");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  const std::string normal = svg.substr(first, second - first), anomalous = svg.substr(second);
  EXPECT_EQ(count(normal, "<title>1</title>"), 1u);
  EXPECT_EQ(count(normal, "<title>2</title>"), 1u);
  EXPECT_EQ(count(anomalous, "<title>1</title>"), 1u);
  EXPECT_EQ(count(anomalous, "<rect x="), 1u);
  EXPECT_NE(svg.find("normal (3)"), std::string::npos) << "the legend counts each group";
}

TEST(CurvePoints, RocAndPrPointsFromTheCounts) {
  // Scores 0.9 0.8 0.7 0.6 with labels 1 0 1 0: after each threshold TP 1 1 2 2, FP 0 1 1 2.
  const auto c = qfae::metrics::binary_curve({0.9, 0.8, 0.7, 0.6}, {1, 0, 1, 0});
  const auto roc = report::roc_points(c);
  EXPECT_EQ(roc.x, (std::vector<double>{0, 0, 0.5, 0.5, 1}));
  EXPECT_EQ(roc.y, (std::vector<double>{0, 0.5, 0.5, 1, 1}));
  const auto pr = report::pr_points(c);
  EXPECT_EQ(pr.x, (std::vector<double>{0, 0.5, 0.5, 1, 1}));
  ASSERT_EQ(pr.y.size(), 5u);
  EXPECT_EQ(pr.y[0], 1);
  EXPECT_EQ(pr.y[1], 1);
  EXPECT_EQ(pr.y[2], 0.5);
  EXPECT_NEAR(pr.y[3], 2.0 / 3.0, 1e-15);
  EXPECT_EQ(pr.y[4], 0.5);
}

TEST(CurvePoints, ThinningKeepsTheEndsAndPointsAResolutionApart) {
  // x = y = i / 16 for i = 0..16 (exact in binary), resolution 0.25: every 4th point.
  report::CurvePoints c;
  for (int i = 0; i <= 16; ++i) {
    c.x.push_back(i / 16.0);
    c.y.push_back(i / 16.0);
  }
  const auto t = report::thin_curve(c, 0.25);
  EXPECT_EQ(t.x, (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  // A jump on one axis alone is kept, and the last point always is.
  const auto u = report::thin_curve({{0, 0.01, 0.02, 0.03}, {0, 0.9, 0.9, 0.91}}, 0.25);
  EXPECT_EQ(u.x, (std::vector<double>{0, 0.01, 0.03}));
  EXPECT_EQ(u.y, (std::vector<double>{0, 0.9, 0.91}));
}
