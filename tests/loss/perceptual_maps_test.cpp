// Perceptual-distance maths on hand-built hidden states: the cosine formula, token-to-grid order,
// products over scales after upsampling, and the loss / pixel map / image score reductions.
#include "qfae/loss/perceptual_maps.h"

#include <gtest/gtest.h>

#include <cmath>

#include "qfae/util/error.h"

namespace L = qfae::loss;

TEST(PerceptualMapsTest, CosineMatchesHandComputedValues) {
  // a = (3, 4), b = (4, 3): cos = 24 / 25. a = (1, 0), b = (-2, 0): cos = -1. Zero vector: 0.
  const auto a = torch::tensor({{3.0f, 4.0f}, {1.0f, 0.0f}, {0.0f, 0.0f}});
  const auto b = torch::tensor({{4.0f, 3.0f}, {-2.0f, 0.0f}, {1.0f, 2.0f}});
  const auto cos = L::cosine_similarity(a, b, /*dim=*/1);
  EXPECT_NEAR(cos[0].item<float>(), 24.0f / 25.0f, 1e-7);
  EXPECT_NEAR(cos[1].item<float>(), -1.0f, 1e-7);
  EXPECT_EQ(cos[2].item<float>(), 0.0f);
  // Never past 1 in magnitude, even for nearly parallel long vectors.
  const auto big = torch::full({1, 64}, 1e4f);
  EXPECT_LE(L::cosine_similarity(big, big * 1.0001f, 1).item<float>(), 1.0f);
}

TEST(PerceptualMapsTest, TokensToGridDropsPrefixAndIsRowMajor) {
  // (B=1, P=2 + 2*3... ) use g = 2: tokens 0,1 prefix, then 4 patch tokens with channel c = t*10+c.
  auto tokens = torch::zeros({1, 6, 3});
  for (int t = 0; t < 6; ++t)
    for (int c = 0; c < 3; ++c) tokens[0][t][c] = float(t * 10 + c);
  const auto grid = L::tokens_to_grid(tokens, /*num_prefix=*/2);
  ASSERT_EQ(grid.sizes(), torch::IntArrayRef({1, 3, 2, 2}));
  for (int row = 0; row < 2; ++row)
    for (int col = 0; col < 2; ++col)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(grid[0][c][row][col].item<float>(), float((2 + row * 2 + col) * 10 + c));
  EXPECT_THROW(L::tokens_to_grid(torch::zeros({1, 7, 3}), 2), c10::Error);  // 5 is not square
}

TEST(PerceptualMapsTest, DistanceMapIsOneMinusCosinePerPosition) {
  auto h_x = torch::zeros({1, 2, 1, 2});
  auto h_xhat = torch::zeros({1, 2, 1, 2});
  h_x[0][0][0][0] = 1.0f;  // position 0: (1, 0) vs (0, 1): orthogonal -> 1
  h_xhat[0][1][0][0] = 1.0f;
  h_x[0][0][0][1] = 2.0f;  // position 1: (2, 0) vs (5, 0): parallel -> 0
  h_xhat[0][0][0][1] = 5.0f;
  const auto d = L::cosine_distance_map(h_x, h_xhat);
  ASSERT_EQ(d.sizes(), torch::IntArrayRef({1, 1, 1, 2}));
  EXPECT_NEAR(d[0][0][0][0].item<float>(), 1.0f, 1e-7);
  EXPECT_NEAR(d[0][0][0][1].item<float>(), 0.0f, 1e-7);
}

TEST(PerceptualMapsTest, LayerMapsMultiplyUpsampledScales) {
  // Scale 0 (g = 2): every position orthogonal except the top-left one (anti-parallel: d = 2).
  // Scale 1 (g = 1): one position with d = 1 - cos(60 deg) = 0.5. Layer 1 swaps in identical
  // states.
  const int64_t c = 2, img = 8;
  auto e0 = torch::tensor({1.0f, 0.0f}).view({1, c, 1, 1});
  auto e1 = torch::tensor({0.0f, 1.0f}).view({1, c, 1, 1});
  auto x0 = e0.expand({1, c, 2, 2}).clone();
  auto xh0 = e1.expand({1, c, 2, 2}).clone();
  xh0.select(2, 0).select(2, 0).copy_(torch::tensor({{-1.0f, 0.0f}}));
  auto x1 = e0.clone();
  auto xh1 = torch::tensor({0.5f, std::sqrt(3.0f) / 2.0f}).view({1, c, 1, 1});
  const L::HiddenStates h_x = {{x0, x0}, {x1, x1}};
  const L::HiddenStates h_xhat = {{xh0, x0}, {xh1, x1}};
  const auto maps = L::layer_maps(h_x, h_xhat, img);
  ASSERT_EQ(maps.sizes(), torch::IntArrayRef({2, 1, 1, img, img}));
  // Bilinear upsampling of a 2x2 grid to 8x8 (align_corners false): pixel (0,0) lies in the
  // top-left cell's clamped corner -> exactly the cell value; pixel (7,7) likewise bottom-right.
  EXPECT_NEAR(maps[0][0][0][0][0].item<float>(), 2.0f * 0.5f, 1e-6);
  EXPECT_NEAR(maps[0][0][0][7][7].item<float>(), 1.0f * 0.5f, 1e-6);
  // Pixel (2,2) sits at source coordinate (2 + 0.5) / 4 - 0.5 = 0.125 on both axes.
  const float w = 0.125f;
  const float v00 = 2.0f, v01 = 1.0f, v10 = 1.0f, v11 = 1.0f;
  const float bilinear = (1 - w) * (1 - w) * v00 + (1 - w) * w * (v01 + v10) + w * w * v11;
  EXPECT_NEAR(maps[0][0][0][2][2].item<float>(), bilinear * 0.5f, 1e-6);
  // Identical states: zero map.
  EXPECT_EQ(maps[1].abs().max().item<float>(), 0.0f);
}

TEST(PerceptualMapsTest, LossPixelMapAndImageScores) {
  // R = 2 layers, B = 2, 1 x 2 x 2 maps.
  const auto maps = torch::tensor({1.0f, 2.0f, 3.0f, 6.0f,   // layer 0, image 0
                                   0.0f, 0.0f, 0.0f, 4.0f,   // layer 0, image 1
                                   3.0f, 2.0f, 1.0f, 2.0f,   // layer 1, image 0
                                   8.0f, 0.0f, 0.0f, 0.0f})  // layer 1, image 1
                        .view({2, 2, 1, 2, 2});
  EXPECT_FLOAT_EQ(L::perceptual_loss(maps).item<float>(), 32.0f / 16.0f);
  const auto pixel = L::pixel_map(maps);
  ASSERT_EQ(pixel.sizes(), torch::IntArrayRef({2, 1, 2, 2}));
  EXPECT_FLOAT_EQ(pixel[0][0][1][1].item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(pixel[1][0][0][0].item<float>(), 4.0f);
  using R = L::Reduction;
  const auto max_mean = L::image_scores(maps, R::kMax, R::kMean);  // brain
  EXPECT_FLOAT_EQ(max_mean[0].item<float>(), (6.0f + 3.0f) / 2.0f);
  EXPECT_FLOAT_EQ(max_mean[1].item<float>(), (4.0f + 8.0f) / 2.0f);
  const auto mean_max = L::image_scores(maps, R::kMean, R::kMax);  // chest
  EXPECT_FLOAT_EQ(mean_max[0].item<float>(), 3.0f);                // max(12/4, 8/4)
  EXPECT_FLOAT_EQ(mean_max[1].item<float>(), 2.0f);                // max(4/4, 8/4)
}

TEST(PerceptualMapsTest, ReductionNamesAreParsedOrRejectedWithTheKey) {
  EXPECT_EQ(L::parse_reduction("max", "eval.pixel_reduction"), L::Reduction::kMax);
  EXPECT_EQ(L::parse_reduction("mean", "eval.pixel_reduction"), L::Reduction::kMean);
  try {
    L::parse_reduction("median", "eval.layer_reduction");
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("eval.layer_reduction"), std::string::npos);
  }
}
