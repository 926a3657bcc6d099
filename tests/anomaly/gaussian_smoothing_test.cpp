// Anomaly-map smoothing against scipy.ndimage.gaussian_filter (tests/fixtures/metrics/
// gaussian_smoothing.json, made by scripts/fixtures/make_smoothing_fixture.py) and hand-checked
// properties.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "qfae/anomaly/gaussian_smoothing.h"
#include "qfae/util/error.h"

namespace qfae::anomaly {
namespace {

TEST(GaussianSmoothing, MatchesScipyGaussianFilter) {
  std::ifstream in(std::string(QFAE_TEST_FIXTURES) + "/metrics/gaussian_smoothing.json");
  ASSERT_TRUE(in) << "missing fixture";
  const auto j = nlohmann::json::parse(in);
  ASSERT_GE(j["cases"].size(), 4u);
  for (const auto& c : j["cases"]) {
    const int64_t h = c["height"], w = c["width"];
    const double sigma = c["sigma"];
    const auto x =
        torch::tensor(c["input"].get<std::vector<double>>(), torch::kDouble).view({1, 1, h, w});
    const auto want =
        torch::tensor(c["expected"].get<std::vector<double>>(), torch::kDouble).view({1, 1, h, w});
    const auto got = gaussian_smooth(x, sigma);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-12) << "sigma " << sigma << " " << h
                                                              << "x" << w;
    // float32 maps, as the evaluation feeds them.
    const auto got32 = gaussian_smooth(x.to(torch::kFloat), sigma).to(torch::kDouble);
    EXPECT_LT((got32 - want).abs().max().item<double>(), 1e-6);
  }
}

TEST(GaussianSmoothing, KernelAndBatchProperties) {
  const auto k = gaussian_kernel_1d(2.0);
  EXPECT_EQ(k.size(0), 2 * 8 + 1);  // radius int(4 * 2 + 0.5) = 8
  EXPECT_NEAR(k.sum().item<double>(), 1.0, 1e-15);
  // A constant map stays constant; maps in a batch do not mix.
  auto maps = torch::ones({2, 1, 6, 5});
  maps[1] *= 3;
  const auto out = gaussian_smooth(maps, 1.5);
  EXPECT_LT((out[0] - 1).abs().max().item<double>(), 1e-6);
  EXPECT_LT((out[1] - 3).abs().max().item<double>(), 1e-6);
  // sigma 0 is off.
  EXPECT_TRUE(gaussian_smooth(maps, 0.0).equal(maps));
}

TEST(GaussianSmoothing, RejectsBadSigma) {
  const auto maps = torch::zeros({1, 1, 4, 4});
  EXPECT_THROW(gaussian_smooth(maps, -1.0), UserError);
  EXPECT_THROW(gaussian_smooth(maps, std::nan("")), UserError);
}

}  // namespace
}  // namespace qfae::anomaly
