// Image AUROC, AP and F1-max against scikit-learn (tests/fixtures/metrics/sklearn_cases.json, made
// by scripts/fixtures/make_metric_fixtures.py) and against hand-worked cases and edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qfae/metrics/auroc.h"
#include "qfae/metrics/average_precision.h"
#include "qfae/metrics/f1_max.h"
#include "qfae/util/error.h"

namespace {

using qfae::metrics::auroc;
using qfae::metrics::average_precision;
using qfae::metrics::f1_max;

nlohmann::json load_cases() {
  std::ifstream in(std::string(QFAE_TEST_FIXTURES) + "/metrics/sklearn_cases.json");
  EXPECT_TRUE(in.good()) << "missing metrics fixture";
  return nlohmann::json::parse(in);
}

TEST(ImageMetrics, MatchSklearnOnSeededCases) {
  const auto doc = load_cases();
  ASSERT_GE(doc["image"].size(), 4u);
  for (const auto& c : doc["image"]) {
    const auto scores = c["scores"].get<std::vector<double>>();
    const auto labels = c["labels"].get<std::vector<int>>();
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_NEAR(auroc(scores, labels), c["auroc"].get<double>(), 1e-9);
    EXPECT_NEAR(average_precision(scores, labels), c["ap"].get<double>(), 1e-9);
    EXPECT_NEAR(f1_max(scores, labels).f1, c["f1_max"].get<double>(), 1e-9);
  }
}

TEST(ImageMetrics, HandWorkedCase) {
  // Scores (label): 0.9(1) 0.8(0) 0.7(1) 0.7(0) 0.1(0).
  // Pairs (pos, neg) = 2 x 3 = 6: 0.9 beats all 3; 0.7 beats 0.1, ties 0.7 (1/2), loses to 0.8.
  // AUROC = (3 + 1 + 0.5) / 6 = 0.75.
  // Thresholds: 0.9 -> TP1 FP0 (P=1, R=1/2); 0.8 -> TP1 FP1; 0.7 -> TP2 FP2 (P=1/2, R=1); 0.1.
  // AP = 1/2 * 1 + 1/2 * 1/2 = 0.75.
  // F1 = 2TP/(2TP+FP+FN): 0.9 -> 2/3; 0.8 -> 2/4; 0.7 -> 4/6; 0.1 -> 4/7. Max 2/3, reached at 0.9
  // and 0.7: the highest threshold, 0.9, is reported.
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.7, 0.1};
  const std::vector<int> labels = {1, 0, 1, 0, 0};
  EXPECT_NEAR(auroc(scores, labels), 0.75, 1e-12);
  EXPECT_NEAR(average_precision(scores, labels), 0.75, 1e-12);
  const auto best = f1_max(scores, labels);
  EXPECT_NEAR(best.f1, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(best.threshold, 0.9);
}

TEST(ImageMetrics, ConstantScoresGiveHalfAndPositiveRate) {
  const std::vector<double> scores(8, 0.3);
  const std::vector<int> labels = {1, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_DOUBLE_EQ(auroc(scores, labels), 0.5);
  EXPECT_DOUBLE_EQ(average_precision(scores, labels), 3.0 / 8.0);
  // Everything predicted anomalous: F1 = 2*3 / (2*3 + 5 + 0).
  EXPECT_NEAR(f1_max(scores, labels).f1, 6.0 / 11.0, 1e-12);
}

TEST(ImageMetrics, PerfectAndInvertedRankings) {
  const std::vector<int> labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(auroc({0.1, 0.2, 0.3, 0.4}, labels), 1.0);
  EXPECT_DOUBLE_EQ(auroc({0.4, 0.3, 0.2, 0.1}, labels), 0.0);
  EXPECT_DOUBLE_EQ(average_precision({0.1, 0.2, 0.3, 0.4}, labels), 1.0);
}

TEST(ImageMetrics, OneClassIsAClearUserError) {
  const std::vector<double> scores(12, 0.5);
  const std::vector<int> normals(12, 0);
  try {
    auroc(scores, normals);
    FAIL() << "expected UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "image AUROC needs normal and anomalous images; got 12 normal, 0 anomalous");
  }
  EXPECT_THROW(average_precision(scores, std::vector<int>(12, 1)), qfae::UserError);
  EXPECT_THROW(f1_max(scores, normals), qfae::UserError);
}

TEST(ImageMetrics, NaNScoreNamesTheMetric) {
  const std::vector<double> scores = {0.1, std::numeric_limits<double>::quiet_NaN(), 0.3};
  const std::vector<int> labels = {0, 1, 1};
  try {
    average_precision(scores, labels);
    FAIL() << "expected UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("image AP"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

TEST(ImageMetrics, BadLabelsAndSizesAreUserErrors) {
  EXPECT_THROW(auroc({0.1, 0.2}, {0, 2}), qfae::UserError);
  EXPECT_THROW(auroc({0.1, 0.2, 0.3}, {0, 1}), qfae::UserError);
}

}  // namespace
