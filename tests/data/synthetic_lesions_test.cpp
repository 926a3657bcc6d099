// Synthetic lesions: inside the foreground, the mask matches the changed pixels, the intensity
// moves away from the tissue under the lesion (both ways), sizes vary, and seeds repeat.
#include "qfae/data/synthetic_lesions.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "../support/dilate.h"

namespace {

using qfae::test::dilate;
constexpr int64_t kSide = 64;

// A "brain": an ellipse of foreground on black, bright white matter (0.8) in its middle band and
// darker grey matter (0.45) around it, with fine stripes; background 0.
struct Brain {
  torch::Tensor image, foreground;
};
Brain make_brain() {
  auto image = torch::zeros({kSide, kSide});
  auto fg = torch::zeros({kSide, kSide});
  for (int64_t y = 0; y < kSide; ++y) {
    for (int64_t x = 0; x < kSide; ++x) {
      const double u = (x + 0.5 - 32) / 27.0, v = (y + 0.5 - 32) / 30.0;
      if (u * u + v * v >= 1) continue;
      fg[y][x] = 1;
      const double wm = std::abs(u) < 0.5 ? 0.8 : 0.45;
      image[y][x] = wm + 0.04 * std::sin(0.9 * x + 0.3 * y);
    }
  }
  return {image, fg};
}

}  // namespace

TEST(SyntheticLesions, MaskMatchesTheChangedPixelsInsideTheForeground) {
  const auto brain = make_brain();
  qfae::data::LesionOptions opts;
  opts.max_count = 2;
  int brighter = 0, darker = 0;
  double min_area = 1e9, max_area = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const auto les = qfae::data::add_synthetic_lesions(brain.image, brain.foreground, opts, seed);
    ASSERT_GE(les.count, 1) << seed;
    const auto diff = les.image - brain.image;
    const auto changed = (diff.abs() > 1e-6).to(torch::kFloat32);
    const auto& mask = les.mask;
    // Changed pixels: all in the foreground, all within 2 px of the mask.
    EXPECT_EQ((changed * (1 - brain.foreground)).sum().item<float>(), 0) << seed;
    EXPECT_EQ((changed * (1 - dilate(mask, 2))).sum().item<float>(), 0) << seed;
    // Mask pixels: all changed, clearly (at least a third of the minimum contrast, half-blended).
    EXPECT_EQ((mask * (1 - changed)).sum().item<float>(), 0) << seed;
    const auto mask_diff = diff.abs().masked_select(mask > 0.5);
    EXPECT_GE(mask_diff.min().item<float>(), opts.min_contrast / 3 * 0.5 - 1e-5) << seed;
    EXPECT_GE(mask_diff.mean().item<float>(), opts.min_contrast * 0.6) << seed;
    EXPECT_EQ((mask * (1 - brain.foreground)).sum().item<float>(), 0) << seed;
    EXPECT_GE(les.image.min().item<float>(), 0.0f);
    EXPECT_LE(les.image.max().item<float>(), 1.0f);
    const double mean_shift = diff.masked_select(mask > 0.5).mean().item<double>();
    (mean_shift > 0 ? brighter : darker) += 1;
    const double area = mask.sum().item<double>() / les.count;
    min_area = std::min(min_area, area);
    max_area = std::max(max_area, area);
    // Same seed, same lesion.
    const auto again = qfae::data::add_synthetic_lesions(brain.image, brain.foreground, opts, seed);
    EXPECT_TRUE(torch::equal(again.image, les.image));
    EXPECT_TRUE(torch::equal(again.mask, les.mask));
  }
  EXPECT_GT(brighter, 10);
  EXPECT_GT(darker, 10);
  EXPECT_GT(max_area, 4 * min_area);  // a range of sizes
}

TEST(SyntheticLesions, ShiftTurnsAwayFromTheEndOfTheRange) {
  // On near-white tissue a lesion has no room to get brighter, on near-black none to get darker:
  // both would vanish, so every lesion goes the other way.
  auto fg = torch::zeros({kSide, kSide});
  fg.slice(0, 8, 56).slice(1, 8, 56).fill_(1);
  for (const float level : {0.95f, 0.05f}) {
    const auto image = fg * level;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const auto les = qfae::data::add_synthetic_lesions(image, fg, {}, seed);
      ASSERT_EQ(les.count, 1);
      const double shift = (les.image - image).masked_select(les.mask > 0.5).mean().item<double>();
      if (level > 0.5) {
        EXPECT_LT(shift, -0.06) << seed;
      } else {
        EXPECT_GT(shift, 0.06) << seed;
      }
    }
  }
}

TEST(SyntheticLesions, NoRoomMeansNoLesion) {
  auto image = torch::full({kSide, kSide}, 0.5f);
  auto fg = torch::zeros({kSide, kSide});
  fg.slice(0, 30, 32).slice(1, 30, 32).fill_(1);  // 2 x 2 px of tissue: no 2 px lesion fits
  const auto les = qfae::data::add_synthetic_lesions(image, fg, {}, 3);
  EXPECT_EQ(les.count, 0);
  EXPECT_TRUE(torch::equal(les.image, image));
  EXPECT_EQ(les.mask.sum().item<float>(), 0);
}
