// PerceptualDistance through the tiny MAE test export (image 32, patch sizes 8 and 16, width 32):
// gradients reach x_hat only, identical images cost nothing, maps are non-negative, and options
// the export cannot serve are refused naming the file and the value (the caller names the key).
#include "qfae/loss/perceptual_distance.h"

#include <gtest/gtest.h>

#include "../support/user_error.h"
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

// loss.* and eval.* both build one: the message names no key (anomaly::AnomalyModel adds the right
// one, tests/anomaly/anomaly_model_test.cpp), only the file and what it lacks.
TEST(PerceptualDistanceTest, OptionsTheExportCannotServeNameTheFileAndValue) {
  const auto refusal = [](const PerceptualOptions& options) {
    const auto msg = qfae::test::user_error([&] { PerceptualDistance(tiny_mae(), options); });
    EXPECT_NE(msg.find("tiny_mae.pt"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("loss."), std::string::npos) << msg;
    EXPECT_EQ(msg.find("eval."), std::string::npos) << msg;
    return msg;
  };
  auto options = tiny_options();
  options.patch_sizes = {8, 12};
  auto msg = refusal(options);
  EXPECT_NE(msg.find("[8, 16], not 12"), std::string::npos) << msg;
  options = tiny_options();
  options.layers = {1, 9};
  msg = refusal(options);
  EXPECT_NE(msg.find("tap 9"), std::string::npos) << msg;
  options = tiny_options();
  options.image_size = 64;
  msg = refusal(options);
  EXPECT_NE(msg.find("image size 32, not 64"), std::string::npos) << msg;
}
