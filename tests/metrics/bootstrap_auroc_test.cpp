// Bootstrap interval for image AUROC: seeded reproducibility, sane bounds, skipped resamples.
#include "qfae/metrics/bootstrap_auroc.h"

#include <gtest/gtest.h>

#include <vector>

#include "qfae/metrics/auroc.h"
#include "qfae/util/error.h"

namespace {

using qfae::metrics::bootstrap_auroc;
using qfae::metrics::BootstrapOptions;

// 40 samples, separable with some overlap: AUROC well inside (0.5, 1).
void make_case(std::vector<double>& scores, std::vector<int>& labels) {
  for (int i = 0; i < 40; ++i) {
    labels.push_back(i % 2);
    scores.push_back(0.05 * (i % 13) + 0.3 * (i % 2));
  }
}

TEST(BootstrapAuroc, SameSeedSameIntervalDifferentSeedDifferent) {
  std::vector<double> scores;
  std::vector<int> labels;
  make_case(scores, labels);
  BootstrapOptions options;
  options.seed = 42;
  const auto a = bootstrap_auroc(scores, labels, options);
  const auto b = bootstrap_auroc(scores, labels, options);
  EXPECT_EQ(a.lower, b.lower);
  EXPECT_EQ(a.upper, b.upper);
  options.seed = 43;
  const auto c = bootstrap_auroc(scores, labels, options);
  EXPECT_TRUE(c.lower != a.lower || c.upper != a.upper);
}

TEST(BootstrapAuroc, ContainsThePointEstimate) {
  std::vector<double> scores;
  std::vector<int> labels;
  make_case(scores, labels);
  const auto ci = bootstrap_auroc(scores, labels);
  EXPECT_DOUBLE_EQ(ci.estimate, qfae::metrics::auroc(scores, labels));
  EXPECT_LT(ci.lower, ci.estimate);
  EXPECT_GT(ci.upper, ci.estimate);
  EXPECT_LT(ci.upper - ci.lower, 0.5);  // 40 samples: the interval is informative
  EXPECT_GE(ci.lower, 0.0);
  EXPECT_LE(ci.upper, 1.0);
  EXPECT_EQ(ci.resamples_used + ci.resamples_skipped, 1000);
}

TEST(BootstrapAuroc, PerfectSeparationGivesDegenerateInterval) {
  // Every resample with both classes is perfectly ranked: the interval is [1, 1].
  const std::vector<double> scores = {0.1, 0.2, 0.3, 0.7, 0.8, 0.9};
  const std::vector<int> labels = {0, 0, 0, 1, 1, 1};
  const auto ci = bootstrap_auroc(scores, labels);
  EXPECT_DOUBLE_EQ(ci.lower, 1.0);
  EXPECT_DOUBLE_EQ(ci.upper, 1.0);
  // P(one class only) = 2 * 0.5^6 = 1/32: roughly 31 of 1000 resamples are skipped.
  EXPECT_GT(ci.resamples_skipped, 5);
  EXPECT_LT(ci.resamples_skipped, 80);
}

TEST(BootstrapAuroc, RejectsBadOptions) {
  BootstrapOptions options;
  options.resamples = 0;
  EXPECT_THROW(bootstrap_auroc({0.1, 0.9}, {0, 1}, options), qfae::UserError);
  options.resamples = 10;
  options.confidence = 1.5;
  EXPECT_THROW(bootstrap_auroc({0.1, 0.9}, {0, 1}, options), qfae::UserError);
}

}  // namespace
