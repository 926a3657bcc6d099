// Volume normalisation and slicing on hand-made io::Volume values (no NIfTI needed): percentiles
// as numpy's, foreground and lesion counts per slice, square padding and resizing.
#include "qfae/data/volume_slices.h"

#include <gtest/gtest.h>

#include "../support/user_error.h"

using qfae::test::user_error;

namespace {

qfae::io::Volume make_volume(int64_t w, int64_t h, int64_t d, const std::string& path = "v.nii") {
  qfae::io::Volume v;
  v.path = path;
  v.width = w;
  v.height = h;
  v.depth = d;
  v.voxels.assign(static_cast<size_t>(w * h * d), 0.0f);
  return v;
}

}  // namespace

TEST(VolumeSlices, NormalisesForegroundPercentilesLikeNumpy) {
  auto v = make_volume(101, 1, 2);  // slice 0: values 1..101, slice 1: background (-5)
  for (int64_t i = 0; i < 101; ++i) v.voxels[i] = static_cast<float>(i + 1);
  for (int64_t i = 101; i < 202; ++i) v.voxels[i] = -5.0f;
  qfae::data::NormaliseOptions opts;
  opts.low_percentile = 10;
  opts.high_percentile = 99.5;
  const auto n = qfae::data::normalise_volume(v, opts);
  EXPECT_DOUBLE_EQ(n.low, 11.0);              // np.percentile(np.arange(1, 102), 10)
  EXPECT_DOUBLE_EQ(n.high, 100.5);            // np.percentile(np.arange(1, 102), 99.5)
  EXPECT_FLOAT_EQ(n.volume.voxels[5], 0.0f);  // 6 < low: clipped
  EXPECT_FLOAT_EQ(n.volume.voxels[50], static_cast<float>((51 - 11.0) / 89.5));
  EXPECT_FLOAT_EQ(n.volume.voxels[100], 1.0f);
  EXPECT_FLOAT_EQ(n.volume.voxels[150], 0.0f);  // background
  EXPECT_EQ(n.foreground[0], 1);
  EXPECT_EQ(n.foreground[150], 0);

  const auto stats = qfae::data::slice_stats(n, nullptr);
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_DOUBLE_EQ(stats[0].foreground_fraction, 1.0);
  EXPECT_DOUBLE_EQ(stats[1].foreground_fraction, 0.0);

  auto flat = make_volume(3, 3, 3, "/data/flat.nii.gz");
  EXPECT_NE(user_error([&] { qfae::data::normalise_volume(flat, {}); }).find("/data/flat.nii.gz"),
            std::string::npos);
}

TEST(VolumeSlices, CountsLesionPixelsAndChecksTheLabelShape) {
  auto v = make_volume(4, 4, 3);
  for (auto& x : v.voxels) x = 1.0f;
  v.voxels[0] = 0.0f;  // one background voxel in slice 0
  const auto n = qfae::data::normalise_volume(v, {});
  auto label = make_volume(4, 4, 3, "seg.nii");
  label.voxels[16 + 5] = 2.0f;  // slice 1: two lesion pixels
  label.voxels[16 + 6] = 4.0f;
  const auto stats = qfae::data::slice_stats(n, &label);
  EXPECT_DOUBLE_EQ(stats[0].foreground_fraction, 15.0 / 16.0);
  EXPECT_EQ(stats[0].lesion_pixels, 0);
  EXPECT_EQ(stats[1].lesion_pixels, 2);
  const auto wrong = make_volume(4, 4, 2, "short_seg.nii");
  const auto msg = user_error([&] { qfae::data::slice_stats(n, &wrong); });
  EXPECT_NE(msg.find("short_seg.nii"), std::string::npos) << msg;
  EXPECT_NE(msg.find("v.nii"), std::string::npos) << msg;
}

TEST(VolumeSlices, SlicesArePaddedToACentredSquareThenResized) {
  auto v = make_volume(5, 3, 2);  // 3 rows, 5 columns: one row of padding above and below
  for (int64_t p = 0; p < 15; ++p) v.voxels[15 + p] = static_cast<float>(p + 1) / 15.0f;
  const auto s = qfae::data::slice_image(v, 1, 0);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{5, 5}));
  EXPECT_FLOAT_EQ(s[0].sum().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(s[1][0].item<float>(), 1.0f / 15);  // row 0, column 0 of the slice
  EXPECT_FLOAT_EQ(s[3][4].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(s[4].sum().item<float>(), 0.0f);
  EXPECT_EQ(qfae::data::slice_image(v, 1, 16).sizes(), (std::vector<int64_t>{16, 16}));

  auto label = make_volume(5, 3, 2);
  label.voxels[15 + 7] = 1.0f;  // row 1, column 2 -> padded (2, 2)
  const auto m = qfae::data::slice_mask(label, 1, 10);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(m.sum().item<float>(), 4.0f);  // nearest: one pixel becomes 2 x 2, still 0/1
  EXPECT_EQ(m[4][4].item<float>(), 1.0f);
  EXPECT_EQ(((m == 0) | (m == 1)).all().item<bool>(), true);

  // Foreground at a smaller size: only where the whole footprint was foreground.
  auto big = make_volume(8, 8, 1);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) big.voxels[y * 8 + x] = (x < 5) ? 1.0f : 0.0f;
  const auto nb = qfae::data::normalise_volume(big, {});
  const auto fg = qfae::data::slice_foreground(nb, 0, 4);  // 2 x 2 footprints
  EXPECT_EQ(fg[0][1].item<float>(), 1.0f);                 // columns 2-3: all foreground
  EXPECT_EQ(fg[0][2].item<float>(), 0.0f);                 // columns 4-5: half
  EXPECT_EQ(fg[0][3].item<float>(), 0.0f);
}
