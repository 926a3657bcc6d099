// ScoreRange: min/max over batches, non-finite values ignored, degenerate ranges widened.
#include "qfae/metrics/score_range.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

namespace {

TEST(ScoreRange, TracksMinMaxAcrossBatchesIgnoringNonFinite) {
  qfae::metrics::ScoreRange range;
  EXPECT_TRUE(range.empty());
  range.add(torch::tensor({0.5f, 2.0f, std::numeric_limits<float>::quiet_NaN()}));
  range.add(torch::tensor({-1.25f, std::numeric_limits<float>::infinity()}));
  EXPECT_DOUBLE_EQ(range.lo(), -1.25);
  EXPECT_DOUBLE_EQ(range.hi(), 2.0);
}

TEST(ScoreRange, ConstantScoresAreWidened) {
  qfae::metrics::ScoreRange range;
  range.add(torch::full({2, 3}, 0.25));
  EXPECT_DOUBLE_EQ(range.lo(), 0.25);
  EXPECT_DOUBLE_EQ(range.hi(), 1.25);
}

}  // namespace
