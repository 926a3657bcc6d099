// data/load_sample: decode, resize, grey to three channels, normalisation, seeded
// augmentation, and the mask that goes with the image; hand-worked values.
#include "qfae/data/load_sample.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "../support/run_binary.h"
#include "../support/tree_util.h"

using qfae::test::TempDir;
using qfae::test::user_error;

namespace pipeline_test {

qfae::config::DataConfig plain_config(int64_t size) {
  qfae::config::DataConfig cfg;
  cfg.image_size = size;
  cfg.mean = 0.0;
  cfg.std = 1.0;
  return cfg;
}

TEST(Pipeline, ResizesReplicatesGreyAndNormalises) {
  TempDir dir;
  const auto path = (dir.path() / "g.png").string();
  ASSERT_TRUE(cv::imwrite(path, cv::Mat(8, 8, CV_8UC1, cv::Scalar(51))));  // 0.2
  auto cfg = plain_config(4);
  cfg.mean = 0.449;
  cfg.std = 0.226;
  const auto s = qfae::data::load_sample({path, 0, "", ""}, cfg, /*augment=*/false, 0);
  ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{3, 4, 4}));
  EXPECT_TRUE(torch::equal(s.image[0], s.image[1]));
  EXPECT_TRUE(torch::equal(s.image[0], s.image[2]));
  EXPECT_NEAR(s.image[1][2][3].item<float>(), (0.2 - 0.449) / 0.226, 1e-5);
  EXPECT_EQ(s.mask.sizes(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(s.mask.sum().item<float>(), 0.0f);
}

TEST(Pipeline, AugmentationIsSeededAndIdentityWhenTurnedOff) {
  TempDir dir;
  const auto path = (dir.path() / "x.png").string();
  cv::Mat grad(16, 16, CV_8UC1);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) grad.at<uint8_t>(y, x) = static_cast<uint8_t>(7 * x + 9 * y);
  ASSERT_TRUE(cv::imwrite(path, grad));
  const qfae::data::Sample sample{path, 0, "", ""};
  auto cfg = plain_config(12);
  const auto a = qfae::data::load_sample(sample, cfg, true, 123).image;
  const auto b = qfae::data::load_sample(sample, cfg, true, 123).image;
  const auto c = qfae::data::load_sample(sample, cfg, true, 124).image;
  const auto plain = qfae::data::load_sample(sample, cfg, false, 0).image;
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_FALSE(torch::equal(a, plain));
  cfg.rotation_deg = 0;
  cfg.vflip_prob = 0;
  cfg.crop_scale_min = cfg.crop_scale_max = 1;
  cfg.crop_ratio_min = cfg.crop_ratio_max = 1;
  cfg.brightness = cfg.contrast = 0;
  EXPECT_TRUE(torch::equal(qfae::data::load_sample(sample, cfg, true, 123).image, plain));
}

TEST(Pipeline, MaskOfAnotherSizeNamesBothFiles) {
  TempDir dir;
  const auto img = qfae::test::grey_png(dir.path() / "img.png", 8, 0.5);
  const auto mask = qfae::test::grey_png(dir.path() / "mask.png", 6, 1.0);
  const auto msg = user_error([&] {
    qfae::data::load_sample({img, 1, mask, ""}, plain_config(4), false, 0);
  });
  EXPECT_NE(msg.find("mask.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("img.png"), std::string::npos) << msg;
  // Same size: the mask is binarised, resized with nearest and follows the image's geometry.
  const auto ok = qfae::test::grey_png(dir.path() / "ok.png", 8, 1.0);
  const auto s = qfae::data::load_sample({img, 1, ok, ""}, plain_config(4), false, 0);
  EXPECT_EQ(s.mask.sum().item<float>(), 16.0f);
}

}  // namespace pipeline_test
