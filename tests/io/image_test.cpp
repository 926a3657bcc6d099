// io/image: decoding PNG (8 and 16 bit), JPEG, BMP and TIFF to unit-range tensors, masks, and the
// errors for bad files, against values written with OpenCV directly. (Resampling and augmentation
// are tested in tests/data/transforms_test.cpp, load_sample in tests/data/load_sample_test.cpp.)
#include "qfae/io/image.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "../support/tree_util.h"
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

// Masks stored as labels (0/1, or class numbers up to 8) are not intensities: non-zero is lesion.
// Hand-worked: 0/255 masks and anything above 8 keep the scaled-threshold rule.
TEST(Image, MaskLabelsAreReadAsLesions) {
  TempDir dir;
  const auto write = [&](const std::string& name, const cv::Mat& m) {
    const auto path = (dir.path() / name).string();
    EXPECT_TRUE(cv::imwrite(path, m));
    return path;
  };
  expect_values(qfae::io::read_mask(write("01.png", (cv::Mat_<uint8_t>(1, 4) << 0, 1, 1, 0)), 0.5),
                {0, 1, 1, 0}, 0);
  expect_values(
      qfae::io::read_mask(write("brats.png", (cv::Mat_<uint8_t>(1, 5) << 0, 1, 2, 4, 0)), 0.5),
      {0, 1, 1, 1, 0}, 0);
  expect_values(
      qfae::io::read_mask(write("01_16.png", (cv::Mat_<uint16_t>(1, 3) << 1, 0, 1)), 0.5),
      {1, 0, 1}, 0);
  // 9 / 255 = 0.035 <= 0.5: an intensity mask whose lesion is too faint, as before.
  expect_values(qfae::io::read_mask(write("09.png", (cv::Mat_<uint8_t>(1, 2) << 0, 9)), 0.5), {0, 0},
                0);
  expect_values(qfae::io::read_mask(write("0255.png", (cv::Mat_<uint8_t>(1, 2) << 255, 0)), 0.5),
                {1, 0}, 0);
}

namespace {

// A TIFF structure ("MM" or "II") holding one directory entry: Orientation (0x0112, SHORT).
std::string exif_tiff(int orientation, bool big_endian) {
  std::string t = big_endian ? std::string("MM\0\x2a\0\0\0\x08", 8) : std::string("II\x2a\0\x08\0\0\0", 8);
  const auto u16 = [&](int v) {
    const char hi = static_cast<char>(v >> 8), lo = static_cast<char>(v & 0xFF);
    t += big_endian ? std::string{hi, lo} : std::string{lo, hi};
  };
  const auto u32 = [&](uint32_t v) {
    u16(big_endian ? static_cast<int>(v >> 16) : static_cast<int>(v & 0xFFFF));
    u16(big_endian ? static_cast<int>(v & 0xFFFF) : static_cast<int>(v >> 16));
  };
  u16(1);  // one entry
  u16(0x0112);
  u16(3);   // SHORT
  u32(1);   // one value
  u16(orientation);
  u16(0);   // padding of the 4-byte value field
  u32(0);   // no next directory
  return t;
}

// `jpeg` (SOI first) with an APP1 Exif segment holding `orientation` right after its SOI.
std::string with_exif(const std::vector<uchar>& jpeg, int orientation, bool big_endian) {
  const std::string payload = std::string("Exif\0\0", 6) + exif_tiff(orientation, big_endian);
  const size_t length = payload.size() + 2;
  std::string out(jpeg.begin(), jpeg.begin() + 2);
  out += std::string{'\xFF', '\xE1', static_cast<char>(length >> 8), static_cast<char>(length)};
  out += payload;
  out.append(jpeg.begin() + 2, jpeg.end());
  return out;
}

// (3, H, W) RGB in [0, 1] -> 8-bit BGR Mat, as OpenCV holds it.
cv::Mat to_bgr8(const torch::Tensor& chw) {
  auto hwc = (chw * 255).round().to(torch::kUInt8).permute({1, 2, 0}).flip(2).contiguous();
  return cv::Mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3,
                 hwc.data_ptr<uint8_t>()).clone();
}

}  // namespace

// Camera photos (ISIC-style) are stored as the sensor saw them with an EXIF orientation: read as a
// viewer shows them. Expected: OpenCV's own imread with IMREAD_COLOR (which applies the EXIF
// orientation itself, a separate implementation), and for orientation 6 by hand: the untagged
// picture turned 90 degrees clockwise.
TEST(Image, ExifOrientationIsAppliedAsAViewerShowsIt) {
  TempDir dir;
  cv::Mat picture(12, 20, CV_8UC3);  // wider than high, and no two corners alike
  for (int y = 0; y < picture.rows; ++y) {
    for (int x = 0; x < picture.cols; ++x) {
      picture.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(12 * x), static_cast<uchar>(20 * y),
                                             static_cast<uchar>(x < 5 && y < 4 ? 255 : 0));
    }
  }
  std::vector<uchar> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", picture, jpeg, {cv::IMWRITE_JPEG_QUALITY, 100}));
  const auto plain_path = dir.write("plain.jpg", std::string(jpeg.begin(), jpeg.end()));
  const cv::Mat stored = to_bgr8(qfae::io::read_image(plain_path.string()));
  for (int orientation = 1; orientation <= 8; ++orientation) {
    for (bool big_endian : {true, false}) {
      const auto path = dir.write("o" + std::to_string(orientation) + (big_endian ? "m" : "i") +
                                      ".jpg", with_exif(jpeg, orientation, big_endian));
      const cv::Mat ours = to_bgr8(qfae::io::read_image(path.string()));
      const cv::Mat opencv = cv::imread(path.string(), cv::IMREAD_COLOR);
      ASSERT_EQ(ours.size(), opencv.size()) << "orientation " << orientation;
      EXPECT_EQ(cv::norm(ours, opencv, cv::NORM_INF), 0) << "orientation " << orientation;
      const bool turned = orientation >= 5;
      EXPECT_EQ(ours.rows, turned ? 20 : 12) << "orientation " << orientation;
    }
  }
  cv::Mat clockwise;
  cv::rotate(stored, clockwise, cv::ROTATE_90_CLOCKWISE);
  const cv::Mat six = to_bgr8(qfae::io::read_image((dir.path() / "o6m.jpg").string()));
  EXPECT_EQ(cv::norm(six, clockwise, cv::NORM_INF), 0);

  // A mask with the same tag turns with its image.
  cv::Mat mask(12, 20, CV_8UC1, cv::Scalar(0));
  mask(cv::Rect(0, 0, 5, 4)) = 255;
  std::vector<uchar> mask_jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", mask, mask_jpeg, {cv::IMWRITE_JPEG_QUALITY, 100}));
  const auto mask_path = dir.write("mask6.jpg", with_exif(mask_jpeg, 6, true));
  const auto m = qfae::io::read_mask(mask_path.string(), 0.5);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 20, 12}));
  // Clockwise, the top-left 5 x 4 block goes to the top-right corner as a 4 x 5 block.
  EXPECT_EQ(m[0][0][11].item<float>(), 1.0f);
  EXPECT_EQ(m[0][4][8].item<float>(), 1.0f);
  EXPECT_EQ(m[0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(m.sum().item<float>(), 20.0f);
}
