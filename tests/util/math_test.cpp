// numpy-style percentiles and quantiles (util/math.h) against values numpy gives, and smoothstep
// against its formula at hand-worked points.
#include "qfae/util/math.h"

#include <gtest/gtest.h>

#include <vector>

using qfae::UserError;

TEST(Math, PercentileIsNumpysLinearInterpolation) {
  // numpy.percentile([3, 1, 4, 1, 5], p): p=0 -> 1, 50 -> 3, 90 -> 4.6, 99 -> 4.96, 100 -> 5.
  const std::vector<double> v = {3, 1, 4, 1, 5};
  EXPECT_DOUBLE_EQ(qfae::percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(qfae::percentile(v, 50), 3);
  EXPECT_NEAR(qfae::percentile(v, 90), 4.6, 1e-12);
  EXPECT_NEAR(qfae::percentile(v, 99), 4.96, 1e-12);
  EXPECT_DOUBLE_EQ(qfae::percentile(v, 100), 5);
  EXPECT_DOUBLE_EQ(qfae::percentile(std::vector<double>{2.5}, 99), 2.5);
  EXPECT_THROW(qfae::percentile(std::vector<double>{}, 50), UserError);
  EXPECT_THROW(qfae::percentile(v, 101), UserError);
  EXPECT_THROW(qfae::percentile(v, -1), UserError);
}

TEST(Math, QuantileTakesFractionsAndFloats) {
  // numpy.quantile([10, 0, 30, 20], q): q=0.025 -> 0.75, 0.975 -> 29.25, 0.5 -> 15.
  const std::vector<float> v = {10, 0, 30, 20};
  EXPECT_NEAR(qfae::quantile(v, 0.025), 0.75, 1e-12);
  EXPECT_NEAR(qfae::quantile(v, 0.975), 29.25, 1e-12);
  EXPECT_DOUBLE_EQ(qfae::quantile(v, 0.5), 15);
  EXPECT_THROW(qfae::quantile(v, 1.5), UserError);
}

TEST(Math, SmoothstepIsTheCubicBetweenItsEdges) {
  EXPECT_DOUBLE_EQ(qfae::smoothstep(0, 1, -1), 0);
  EXPECT_DOUBLE_EQ(qfae::smoothstep(0, 1, 2), 1);
  EXPECT_DOUBLE_EQ(qfae::smoothstep(0, 2, 1), 0.5);          // t = 0.5: 3/4 - 2/8
  EXPECT_DOUBLE_EQ(qfae::smoothstep(0, 4, 1), 0.15625);      // t = 1/4: 3/16 - 2/64
}
