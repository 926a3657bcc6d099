// io/image: decoding PNG (8 and 16 bit), JPEG, BMP and TIFF to unit-range tensors, masks, and the
// errors for bad files, against values written with OpenCV directly. (Resampling and augmentation
// are tested in tests/data/transforms_test.cpp, load_sample in tests/data/pipeline_test.cpp.)
#include "qfae/io/image.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "../data/tree_util.h"
#include "../support/run_binary.h"

namespace fs = std::filesystem;
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
