// PerceptualDistance through the tiny MAE test export (image 32, patch sizes 8 and 16, width 32):
// gradients reach x_hat only, identical images cost nothing, maps are non-negative, and options
// the export cannot serve are refused naming the config key.
#include "qfae/loss/perceptual_distance.h"

#include <gtest/gtest.h>

#include "qfae/util/error.h"

using qfae::loss::PerceptualDistance;
using qfae::loss::PerceptualOptions;

namespace {

std::shared_ptr<qfae::backbone::TorchScriptBackbone> tiny_mae() {
  return std::make_shared<qfae::backbone::TorchScriptBackbone>(
      std::string(QFAE_TEST_FIXTURES) + "/backbones/tiny_mae.pt", torch::kCPU);
}

PerceptualOptions tiny_options() {
  PerceptualOptions o;
  o.patch_sizes = {8, 16};  // 4 x 4 and 2 x 2 grids
  o.layers = {1, 3};
  o.image_size = 32;
  return o;
}

}  // namespace

TEST(PerceptualDistanceTest, HiddenStatesAreGridsPerScaleAndLayer) {
  PerceptualDistance distance(tiny_mae(), tiny_options());
  const auto hidden = distance.hidden_states(torch::randn({2, 3, 32, 32}));
  ASSERT_EQ(hidden.size(), 2u);
  ASSERT_EQ(hidden[0].size(), 2u);
  EXPECT_EQ(hidden[0][1].sizes(), torch::IntArrayRef({2, 32, 4, 4}));
  EXPECT_EQ(hidden[1][0].sizes(), torch::IntArrayRef({2, 32, 2, 2}));
  // Each image is processed independently: batch item 1 alone gives the same states.
  torch::manual_seed(3);
  const auto images = torch::randn({2, 3, 32, 32});
  const auto both = distance.hidden_states(images);
  const auto alone = distance.hidden_states(images.slice(0, 1, 2));
  EXPECT_TRUE(torch::allclose(both[1][1].slice(0, 1, 2), alone[1][1], 1e-5, 1e-5));
}

TEST(PerceptualDistanceTest, GradientReachesXHatButNeitherXNorTheMae) {
  torch::manual_seed(0);
  auto mae = tiny_mae();
  PerceptualDistance distance(mae, tiny_options());
  const auto x = torch::randn({2, 3, 32, 32}).requires_grad_(true);
  const auto x_hat = (x.detach() + 0.5 * torch::randn({2, 3, 32, 32})).requires_grad_(true);
  const auto loss = distance.loss(x, x_hat);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_GT(loss.item<float>(), 0.0f);
  loss.backward();
  ASSERT_TRUE(x_hat.grad().defined());
  EXPECT_GT(x_hat.grad().abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(x.grad().defined());
  for (const auto& p : mae->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(PerceptualDistanceTest, IdenticalImagesCostNothingAndMapsAreNonNegative) {
  torch::manual_seed(1);
  PerceptualDistance distance(tiny_mae(), tiny_options());
  const auto x = torch::randn({2, 3, 32, 32});
  EXPECT_NEAR(distance.loss(x, x.clone()).item<float>(), 0.0f, 1e-6);
  const auto maps = distance.layer_maps(x, torch::randn({2, 3, 32, 32}));
  ASSERT_EQ(maps.sizes(), torch::IntArrayRef({2, 2, 1, 32, 32}));
  EXPECT_GE(maps.min().item<float>(), 0.0f);
  EXPECT_GT(maps.max().item<float>(), 0.0f);
}

TEST(PerceptualDistanceTest, OptionsTheExportCannotServeNameTheKey) {
  auto options = tiny_options();
  options.patch_sizes = {8, 12};
  try {
    PerceptualDistance distance(tiny_mae(), options);
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("loss.patch_sizes"), std::string::npos) << e.what();
  }
  options = tiny_options();
  options.layers = {1, 9};
  EXPECT_THROW(PerceptualDistance(tiny_mae(), options), qfae::UserError);
  options = tiny_options();
  options.image_size = 64;
  EXPECT_THROW(PerceptualDistance(tiny_mae(), options), qfae::UserError);
}
