// Image decoding, resampling, augmentation and the per-sample pipeline, against hand-worked values
// and values computed with PyTorch 1.13 (torch.nn.functional.interpolate / grid_sample).
#include "qfae/io/image.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "../data/tree_util.h"
#include "../support/run_binary.h"
#include "qfae/data/pipeline.h"
#include "qfae/data/transforms.h"

namespace fs = std::filesystem;
using qfae::data::AugmentParams;
using qfae::test::TempDir;
using qfae::test::user_error;

namespace {

void expect_values(const torch::Tensor& t, const std::vector<float>& expected, float tol = 1e-5f) {
  const auto flat = t.contiguous().flatten();
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<float>(), expected[i], tol) << "at " << i;
  }
}

qfae::config::DataConfig plain_config(int64_t size) {
  qfae::config::DataConfig cfg;
  cfg.image_size = size;
  cfg.mean = 0.0;
  cfg.std = 1.0;
  return cfg;
}

}  // namespace

TEST(Image, EightAndSixteenBitPngDecodeToTheSameUnitValues) {
  TempDir dir;
  // Written with OpenCV directly, not with our encoder: 51/255 = 13107/65535 = 0.2 and
  // 128/255 = 32896/65535 (32896 = 128 * 257).
  cv::Mat m8 = (cv::Mat_<uint8_t>(1, 4) << 0, 51, 128, 255);
  cv::Mat m16 = (cv::Mat_<uint16_t>(1, 4) << 0, 13107, 32896, 65535);
  const auto p8 = (dir.path() / "a8.png").string(), p16 = (dir.path() / "a16.png").string();
  ASSERT_TRUE(cv::imwrite(p8, m8));
  ASSERT_TRUE(cv::imwrite(p16, m16));
  const auto a = qfae::io::read_image(p8), b = qfae::io::read_image(p16);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 1, 4}));
  expect_values(a, {0.0f, 0.2f, 128.0f / 255.0f, 1.0f}, 1e-7f);
  expect_values(b, {0.0f, 0.2f, 128.0f / 255.0f, 1.0f}, 1e-7f);
}

TEST(Image, ColourIsReturnedAsRgbAndOtherFormatsDecode) {
  TempDir dir;
  cv::Mat bgr(2, 3, CV_8UC3, cv::Scalar(10, 20, 30));  // OpenCV order: B, G, R
  for (const char* ext : {".png", ".bmp", ".tif"}) {
    const auto path = (dir.path() / (std::string("c") + ext)).string();
    ASSERT_TRUE(cv::imwrite(path, bgr));
    const auto t = qfae::io::read_image(path);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 2, 3})) << ext;
    EXPECT_NEAR(t[0][1][2].item<float>(), 30 / 255.0f, 1e-7f) << ext;  // R first
    EXPECT_NEAR(t[2][0][0].item<float>(), 10 / 255.0f, 1e-7f) << ext;
  }
  const auto jpg = (dir.path() / "g.JPG").string();  // upper-case extension too
  ASSERT_TRUE(cv::imwrite(jpg, cv::Mat(8, 8, CV_8UC1, cv::Scalar(200))));
  EXPECT_TRUE(qfae::io::is_image_file(jpg));
  EXPECT_NEAR(qfae::io::read_image(jpg).mean().item<float>(), 200 / 255.0f, 2 / 255.0f);
  EXPECT_FALSE(qfae::io::is_image_file("notes.txt"));
}

TEST(Image, BadFilesGiveErrorsNamingTheFile) {
  TempDir dir;
  const auto empty = qfae::test::touch(dir.path() / "empty.png");
  EXPECT_NE(user_error([&] { qfae::io::read_image(empty); }).find("empty.png' is empty"),
            std::string::npos);
  const auto good = qfae::test::grey_png(dir.path() / "full.png", 32, 0.5);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = qfae::test::text(dir.path() / "cut.png", bytes.substr(0, bytes.size() / 2));
  const auto msg = user_error([&] { qfae::io::read_image(cut); });
  EXPECT_NE(msg.find("cut.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  const auto jpg = (dir.path() / "full.jpg").string();
  ASSERT_TRUE(cv::imwrite(jpg, cv::Mat(16, 16, CV_8UC1, cv::Scalar(90))));
  std::ifstream jin(jpg, std::ios::binary);
  std::string jbytes((std::istreambuf_iterator<char>(jin)), std::istreambuf_iterator<char>());
  const auto cutj = qfae::test::text(dir.path() / "cut.jpg", jbytes.substr(0, jbytes.size() - 40));
  EXPECT_NE(user_error([&] { qfae::io::read_image(cutj); }).find("cut.jpg"), std::string::npos);
  const auto junk = qfae::test::text(dir.path() / "junk.png", "this is not a png at all");
  EXPECT_NE(user_error([&] { qfae::io::read_image(junk); }).find("junk.png"), std::string::npos);
  EXPECT_NE(user_error([&] {
              qfae::io::read_image((dir.path() / "nope.png").string());
            }).find("nope.png' does not exist"),
            std::string::npos);
}

TEST(Image, MaskIsThresholdedAfterScaling) {
  TempDir dir;
  const auto path = (dir.path() / "m.png").string();
  // 2/255 = 0.0078 <= 0.01 < 3/255 = 0.0118.
  const cv::Mat m = (cv::Mat_<uint8_t>(1, 4) << 0, 2, 3, 255);
  ASSERT_TRUE(cv::imwrite(path, m));
  expect_values(qfae::io::read_mask(path, 0.01), {0, 0, 1, 1}, 0);
}

TEST(Image, ResizeMatchesTorchInterpolateWithAntialias) {
  // Values from torch 1.13: F.interpolate(x, size, mode="bilinear", align_corners=False,
  // antialias=True).
  const auto a = (torch::arange(24, torch::kFloat32) / 23).reshape({1, 4, 6});
  expect_values(qfae::data::resize_bilinear(a, 2, 3),
                {0.21739131f, 0.29503104f, 0.37267083f, 0.62732923f, 0.70496893f, 0.78260875f});
  const auto b = (torch::arange(35, torch::kFloat32).pow(1.5) / 205).reshape({1, 5, 7});
  expect_values(qfae::data::resize_bilinear(b, 3, 2),
                {0.05970153f, 0.10760330f, 0.31092626f, 0.39558345f, 0.67330801f, 0.78290975f});
  const auto c = torch::tensor({0.0f, 1.0f, 0.5f, 0.25f}).reshape({1, 2, 2});  // enlarging
  expect_values(qfae::data::resize_bilinear(c, 3, 3),
                {0.0f, 0.5f, 1.0f, 0.25f, 0.4375f, 0.625f, 0.5f, 0.375f, 0.25f});
}

TEST(Image, NearestResizeSamplesPixelCentres) {
  const auto x = torch::arange(16, torch::kFloat32).reshape({1, 4, 4});
  // floor((i + 0.5) * 2) = 1, 3 on both axes.
  expect_values(qfae::data::resize_nearest(x, 2, 2), {5, 7, 13, 15}, 0);
}

TEST(Image, RotationMatchesGridSample) {
  // torch 1.13: grid_sample(img, affine_grid([[cos, -sin, 0], [sin, cos, 0]]), bilinear, zeros,
  // align_corners=False) for 30 degrees, which is what torchvision's rotate does on tensors.
  const auto img = (torch::arange(25, torch::kFloat32) / 24).reshape({1, 5, 5});
  expect_values(
      qfae::data::rotate(img, 30.0, /*bilinear=*/true),
      {0.01415609f, 0.06828267f, 0.18082276f, 0.32107383f, 0.11543877f, 0.05990928f, 0.20016032f,
       0.34041137f, 0.48066244f, 0.46940479f, 0.21949787f, 0.35974893f, 0.5f,        0.64025104f,
       0.78050214f, 0.29854432f, 0.51933753f, 0.65958863f, 0.79983962f, 0.94009072f, 0.15251064f,
       0.67892617f, 0.81917727f, 0.69966644f, 0.25379348f});
  // A quarter turn counter-clockwise moves the bottom-middle pixel to the right-middle.
  auto dot = torch::zeros({1, 3, 3});
  dot[0][2][1] = 1;
  const auto turned = qfae::data::rotate(dot, 90.0, /*bilinear=*/false);
  EXPECT_EQ(turned[0][1][2].item<float>(), 1.0f);
  EXPECT_EQ(turned.sum().item<float>(), 1.0f);
}

TEST(Image, ColourJitterFollowsTorchvisionFormulas) {
  const auto x = torch::tensor({0.5f, 0.8f}).reshape({1, 1, 2});
  expect_values(qfae::data::adjust_brightness(x, 1.5), {0.75f, 1.0f});  // clamped at 1
  const auto g = torch::tensor({0.2f, 0.6f}).reshape({1, 1, 2});        // mean 0.4
  expect_values(qfae::data::adjust_contrast(g, 0.5), {0.3f, 0.5f});
  // RGB: grey = 0.299 R + 0.587 G + 0.114 B; pixel (1, 0, 0) and (0, 0, 0): mean 0.1495.
  auto rgb = torch::zeros({3, 1, 2});
  rgb[0][0][0] = 1;
  expect_values(qfae::data::adjust_contrast(rgb, 0.0),
                {0.1495f, 0.1495f, 0.1495f, 0.1495f, 0.1495f, 0.1495f});
}

TEST(Image, CropParametersFollowTorchvision) {
  qfae::config::DataConfig cfg;  // scale 0.9-1, ratio 0.8-1.2
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto p = qfae::data::draw_augment(cfg, 224, 224, seed);
    ASSERT_GE(p.top, 0);
    ASSERT_GE(p.left, 0);
    ASSERT_LE(p.top + p.height, 224);
    ASSERT_LE(p.left + p.width, 224);
    const double area = double(p.height * p.width) / (224.0 * 224.0);
    EXPECT_GE(area, 0.9 - 0.02);
    EXPECT_LE(double(p.width) / p.height, 1.2 + 0.02);
    EXPECT_GE(double(p.width) / p.height, 0.8 - 0.02);
    EXPECT_LE(std::abs(p.angle_deg), 10.0);
    EXPECT_GE(p.brightness, 0.9);
    EXPECT_LE(p.contrast, 1.1);
  }
  // No try can fit a 2:1 box of the full area in a 10x10 image: the fallback is a centre crop
  // at the nearest allowed ratio, w = 10, h = round(10 / 2) = 5, top = (10 - 5) // 2 = 2.
  cfg.crop_scale_min = cfg.crop_scale_max = 1.0;
  cfg.crop_ratio_min = cfg.crop_ratio_max = 2.0;
  const auto p = qfae::data::draw_augment(cfg, 10, 10, 7);
  EXPECT_EQ(p.width, 10);
  EXPECT_EQ(p.height, 5);
  EXPECT_EQ(p.top, 2);
  EXPECT_EQ(p.left, 0);
}

TEST(Image, VerticalFlipReversesRowsOfImageAndMask) {
  AugmentParams p;
  p.height = p.width = 2;
  p.vflip = true;
  auto img = torch::tensor({0.1f, 0.2f, 0.3f, 0.4f}).reshape({1, 2, 2});
  auto mask = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}).reshape({1, 2, 2});
  qfae::data::apply_augment(p, img, &mask);
  expect_values(img, {0.3f, 0.4f, 0.1f, 0.2f});
  expect_values(mask, {0, 0, 1, 0}, 0);
}

TEST(Image, PipelineResizesReplicatesGreyAndNormalises) {
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

TEST(Image, AugmentationIsSeededAndIdentityWhenTurnedOff) {
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

TEST(Image, MaskOfAnotherSizeNamesBothFiles) {
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
