// Pooled pixel metrics from the streaming histogram: exact against sklearn when scores sit on bin
// edges, within the stated bound otherwise; hand-worked Dice, per-image Dice and AUPRO; edge cases.
#include "qfae/metrics/pixel_curve_accumulator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qfae/metrics/aupro.h"
#include "qfae/util/error.h"

namespace {

using qfae::metrics::PixelCurveAccumulator;
using qfae::metrics::PixelCurveOptions;

torch::Tensor tensor_3d(const nlohmann::json& nested) {
  std::vector<float> flat;
  const auto b = static_cast<std::int64_t>(nested.size());
  const auto h = static_cast<std::int64_t>(nested[0].size());
  const auto w = static_cast<std::int64_t>(nested[0][0].size());
  for (const auto& image : nested)
    for (const auto& row : image)
      for (const auto& v : row) flat.push_back(v.get<float>());
  return torch::tensor(flat).reshape({b, h, w});
}

nlohmann::json pixel_fixture() {
  std::ifstream in(std::string(QFAE_TEST_FIXTURES) + "/metrics/sklearn_cases.json");
  EXPECT_TRUE(in.good()) << "missing metrics fixture";
  return nlohmann::json::parse(in)["pixel"];
}

TEST(PixelCurveAccumulator, ExactAgainstSklearnWhenScoresAreBinEdges) {
  const auto fx = pixel_fixture();
  PixelCurveOptions options;
  options.bins = fx["bins"].get<std::int64_t>();
  options.lo = fx["lo"].get<double>();
  options.hi = fx["hi"].get<double>();
  PixelCurveAccumulator acc(options);
  const auto maps = tensor_3d(fx["edges"]["maps"]);
  const auto masks = tensor_3d(fx["masks"]);
  acc.add(maps.slice(0, 0, 1), masks.slice(0, 0, 1));  // streamed in two batches
  acc.add(maps.slice(0, 1, 3), masks.slice(0, 1, 3));
  const auto m = acc.compute();
  EXPECT_NEAR(m.auroc, fx["edges"]["auroc"].get<double>(), 1e-9);
  EXPECT_NEAR(m.ap, fx["edges"]["ap"].get<double>(), 1e-9);
  EXPECT_NEAR(m.best_dice, fx["edges"]["best_dice"].get<double>(), 1e-9);
  EXPECT_EQ(m.positives + m.negatives, 3 * 64);
  EXPECT_EQ(m.regions, 3);  // a 3x3 square; a 2x3 bar and a lone pixel in image 2
  EXPECT_EQ(m.anomalous_images, 2);
  EXPECT_EQ(m.clamped, 0);
  EXPECT_GT(m.auroc_bin_error_bound, 0.0);  // the case has ties across classes on purpose
}

TEST(PixelCurveAccumulator, RandomScoresWithinStatedBound) {
  const auto fx = pixel_fixture();
  const auto maps = tensor_3d(fx["random"]["maps"]);
  const auto masks = tensor_3d(fx["masks"]);
  const double exact_auroc = fx["random"]["auroc"].get<double>();
  const double exact_ap = fx["random"]["ap"].get<double>();
  for (const std::int64_t bins : {64, 1024, 65536}) {
    SCOPED_TRACE("bins " + std::to_string(bins));
    PixelCurveOptions options;
    options.bins = bins;
    PixelCurveAccumulator acc(options);
    acc.add(maps, masks);
    const auto m = acc.compute();
    EXPECT_LE(std::abs(m.auroc - exact_auroc), m.auroc_bin_error_bound + 1e-12);
    if (bins == 64) {
      EXPECT_GT(m.auroc_bin_error_bound, 0.0);  // the bound is exercised
    }
    if (bins == 65536) {
      EXPECT_LT(m.auroc_bin_error_bound, 1e-3);
      EXPECT_NEAR(m.ap, exact_ap, 1e-3);
    }
  }
}

TEST(PixelCurveAccumulator, HandWorkedDiceAndPerImageDice) {
  // img0 mask [1 1 0 0] scores [.75 .25 .5 0]; img1 mask [0 0 0 1] scores [0 .25 0 .75];
  // img2 normal (empty mask), scores all .5: it adds normal pixels only.
  // Pooled P = 3, N = 9. Dice = 2TP / (2TP + FP + FN) per threshold:
  //   t=.75: TP2 FP0 FN1 -> 4/5; t=.5: TP2 FP5 -> 4/10; t=.25: TP3 FP6 -> 6/12; t=0: 6/15.
  // Best 0.8 at t = .75. Per image at .75: img0 TP1 FN1 -> 2/3; img1 TP1 -> 1; mean 5/6.
  auto maps = torch::tensor({0.75f, 0.25f, 0.5f, 0.f, 0.f, 0.25f, 0.f, 0.75f, .5f, .5f, .5f, .5f})
                  .reshape({3, 1, 4});
  auto masks = torch::tensor({1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}).reshape({3, 1, 4});
  PixelCurveOptions options;
  options.bins = 16;
  PixelCurveAccumulator acc(options);
  acc.add(maps, masks);
  const auto m = acc.compute();
  EXPECT_NEAR(m.best_dice, 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(m.best_dice_threshold, 0.75);
  EXPECT_NEAR(m.per_image_dice, 5.0 / 6.0, 1e-12);
  EXPECT_EQ(m.anomalous_images, 2);
  EXPECT_EQ(m.negatives, 9);
  // Per image, in the order added; the normal image has no Dice.
  const auto dice = acc.image_dice(m.best_dice_bin);
  ASSERT_EQ(dice.size(), 3u);
  EXPECT_NEAR(dice[0], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(dice[1], 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(dice[2]));
  // At t = .25: img0 TP2 FP1 -> 4/5; img1 TP1 FP1 -> 2/3.
  const auto at_quarter = acc.image_dice(m.best_dice_bin - 8);  // 16 bins over [0, 1]
  EXPECT_NEAR(at_quarter[0], 0.8, 1e-12);
  EXPECT_NEAR(at_quarter[1], 2.0 / 3.0, 1e-12);
}

TEST(PixelCurveAccumulator, PerImageDiceOfALargeMapMatchesADirectCount) {
  // 96 x 96 with a 70 x 70 lesion: both pixel sets are large (they are sorted by counting, small
  // ones by std::sort). Scores sit on the edges of 256 bins over [0, 1], so bin j holds exactly
  // the pixels scoring j / 256 and a threshold at bin k flags the pixels with j >= k.
  torch::manual_seed(3);
  const auto level = torch::randint(0, 256, {1, 96, 96}, torch::kInt64);
  const auto maps = level.to(torch::kFloat32) / 256.0;
  auto masks = torch::zeros({1, 96, 96});
  masks.slice(1, 10, 80).slice(2, 20, 90).fill_(1);
  PixelCurveOptions options;
  options.bins = 256;
  PixelCurveAccumulator acc(options);
  acc.add(maps, masks);
  const auto inside = masks > 0.5;
  for (const std::int64_t k : {0, 1, 64, 128, 200, 255}) {
    const auto flagged = level >= k;
    const double tp = (flagged & inside).sum().item<double>();
    const double fp = (flagged & inside.logical_not()).sum().item<double>();
    const double fn = (flagged.logical_not() & inside).sum().item<double>();
    const auto dice = acc.image_dice(k);
    ASSERT_EQ(dice.size(), 1u);
    EXPECT_NEAR(dice[0], 2 * tp / (2 * tp + fp + fn), 1e-12) << "bin " << k;
  }
}

TEST(PixelCurveAccumulator, QuantileIsTheUpperEdgeOfTheBinHoldingIt) {
  // 10 scores over [0, 1] in 10 bins: 0.05 0.15 ... 0.95, one per bin, split across two images.
  auto maps = (torch::arange(10, torch::kFloat64) * 0.1 + 0.05).reshape({2, 1, 5});
  auto masks = torch::zeros({2, 1, 5});
  masks[0][0][4] = 1;
  PixelCurveOptions options;
  options.bins = 10;
  PixelCurveAccumulator acc(options);
  EXPECT_DOUBLE_EQ(acc.quantile(0.5), 1.0);  // nothing added yet: hi
  acc.add(maps, masks);
  // ceil(q * 10)-th smallest score; its bin's upper edge (normal and anomalous pixels pooled).
  EXPECT_NEAR(acc.quantile(0.0), 0.1, 1e-12);   // at least the first score: bin 0
  EXPECT_NEAR(acc.quantile(0.1), 0.1, 1e-12);   // 1st
  EXPECT_NEAR(acc.quantile(0.45), 0.5, 1e-12);  // 5th score 0.45 lies in bin 4 = [0.4, 0.5)
  EXPECT_NEAR(acc.quantile(0.91), 1.0, 1e-12);  // 10th
  EXPECT_NEAR(acc.quantile(1.0), 1.0, 1e-12);
  EXPECT_THROW(acc.quantile(1.5), qfae::UserError);
  EXPECT_THROW(acc.quantile(std::nan("")), qfae::UserError);
}

TEST(PixelCurveAccumulator, HandWorkedAupro) {
  // One 3x4 image, two regions: A = {(0,0), (0,1)} (area 2), B = {(2,3)} (area 1); 9 normals.
  //   A scores .75, .125; B .5; normals .625, .375, .125 and six 0.
  // Thresholds (FPR = FP/9, PRO = mean over regions of covered fraction):
  //   .75: (0, 1/4)  .625: (1/9, 1/4)  .5: (1/9, 3/4)  .375: (2/9, 3/4)  .125: (1/3, 1)  0: (1, 1)
  // Area to 0.3: 1/4 * 1/9 + 3/4 * 1/9 + trapezoid from 2/9 to 0.3 where PRO is interpolated to
  // 3/4 + (0.3 - 2/9) / (1/9) * 1/4 = 0.925: (7/90) * (0.75 + 0.925) / 2 = 0.06513888...
  // Total 0.17625; divided by 0.3: 0.5875.
  auto map = torch::tensor({0.75f, 0.125f, 0.625f, 0.375f,  //
                            0.125f, 0.f, 0.f, 0.f,          //
                            0.f, 0.f, 0.f, 0.5f})
                 .reshape({3, 4});
  auto mask = torch::tensor({1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}).reshape({3, 4});
  PixelCurveOptions options;
  options.bins = 16;
  PixelCurveAccumulator acc(options);
  acc.add(map, mask);
  const auto m = acc.compute();
  EXPECT_EQ(m.regions, 2);
  EXPECT_NEAR(m.aupro, 0.5875, 1e-12);
  // A perfect map scores 1; pro_auc normalises by the limit, not the last FPR reached.
  EXPECT_NEAR(qfae::metrics::pro_auc({0, 0.5, 1}, {1, 1, 1}, 0.3), 1.0, 1e-12);
}

TEST(PixelCurveAccumulator, ConstantMapsGiveHalfAndPositiveRate) {
  auto maps = torch::full({2, 4, 4}, 0.3);
  auto masks = torch::zeros({2, 4, 4});
  masks.index_put_({1, 0}, 1);  // 4 of 32 pixels anomalous
  PixelCurveAccumulator acc;
  acc.add(maps, masks);
  const auto m = acc.compute();
  EXPECT_DOUBLE_EQ(m.auroc, 0.5);
  EXPECT_DOUBLE_EQ(m.ap, 4.0 / 32.0);
}

TEST(PixelCurveAccumulator, AllMasksEmptyIsAUserError) {
  PixelCurveAccumulator acc;
  acc.add(torch::rand({2, 4, 4}), torch::zeros({2, 4, 4}));
  try {
    acc.compute();
    FAIL() << "expected UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("all masks empty"), std::string::npos) << e.what();
  }
}

TEST(PixelCurveAccumulator, NaNInAMapNamesTheImageAndLeavesStateUnchanged) {
  PixelCurveAccumulator acc;
  auto masks = torch::zeros({2, 3, 3});
  masks.index_put_({0, 1, 1}, 1);
  acc.add(torch::rand({2, 3, 3}), masks);
  auto bad = torch::rand({2, 3, 3});
  bad.index_put_({1, 2, 0}, std::numeric_limits<float>::quiet_NaN());
  try {
    acc.add(bad, masks);
    FAIL() << "expected UserError";
  } catch (const qfae::UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("image 3"), std::string::npos) << what;
    EXPECT_NE(what.find("NaN"), std::string::npos) << what;
  }
  EXPECT_EQ(acc.images(), 2);
  EXPECT_EQ(acc.compute().positives + acc.compute().negatives, 18);
}

TEST(PixelCurveAccumulator, BadOptionsAreUserErrors) {
  PixelCurveOptions options;
  options.bins = 1 << 17;
  EXPECT_THROW(PixelCurveAccumulator{options}, qfae::UserError);
  options.bins = 256;
  options.hi = options.lo;
  EXPECT_THROW(PixelCurveAccumulator{options}, qfae::UserError);
}

}  // namespace
