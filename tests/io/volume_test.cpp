// The shared LPS reorientation (io/volume.h) on hand-worked cases: which patient axes oblique
// directions snap to, and where every voxel of a permuted, flipped file lands.
#include "qfae/io/volume.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace {

using Directions = std::array<std::array<double, 3>, 3>;

// v rotated by deg_z about z, then by deg_x about x.
std::array<double, 3> rotated_zx(const std::array<double, 3>& v, double deg_z, double deg_x) {
  const double z = deg_z * std::numbers::pi / 180, x = deg_x * std::numbers::pi / 180;
  const double a = std::cos(z) * v[0] - std::sin(z) * v[1];
  const double b = std::sin(z) * v[0] + std::cos(z) * v[1];
  return {a, std::cos(x) * b - std::sin(x) * v[2], std::sin(x) * b + std::cos(x) * v[2]};
}

std::string snapped_axes(const Directions& d) {
  const auto axes = qfae::io::nearest_axes(d);
  return axes ? qfae::io::axes_letters(*axes) : "none";
}

}  // namespace

TEST(Volume, ObliqueDirectionsSnapToTheirNearestAxes) {
  EXPECT_EQ(snapped_axes({{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}), "LPS");
  // 12 and 10 degrees off: still the same axes, lengths do not matter.
  const Directions oblique = {rotated_zx({0.7, 0, 0}, 12, 10), rotated_zx({0, 0.8, 0}, 12, 10),
                              rotated_zx({0, 0, 2.5}, 12, 10)};
  EXPECT_EQ(snapped_axes(oblique), "LPS");
  const Directions flipped = {rotated_zx({1, 0, 0}, 12, 10), rotated_zx({0, -1, 0}, 12, 10),
                              rotated_zx({0, 0, -1}, 12, 10)};
  EXPECT_EQ(snapped_axes(flipped), "LAI");
  // Sagittal: rows run posterior, columns down, slices towards the right.
  EXPECT_EQ(snapped_axes({{{0, 1, 0}, {0, 0, -1}, {-1, 0, 0}}}), "PIR");
  // 50 degrees about z: the row is nearer P than L, so the column goes to L (largest product).
  const Directions turned = {rotated_zx({1, 0, 0}, 50, 0), rotated_zx({0, 1, 0}, 50, 0),
                             {0, 0, 1}};
  EXPECT_EQ(snapped_axes(turned), "PRS");
  EXPECT_EQ(snapped_axes({{{1, 0, 0}, {1, 0, 0}, {0, 0, 1}}}), "none");
  EXPECT_EQ(snapped_axes({{{1, 0, 0}, {0, 0, 0}, {0, 0, 1}}}), "none");
  EXPECT_EQ(snapped_axes({{{1, 0, 0}, {0, NAN, 1}, {0, 0, 1}}}), "none");
}

TEST(Volume, PermutedFlippedFileLandsInLpsOrder) {
  // A 2 x 3 x 4 file whose axis 0 runs P, axis 1 runs I (against S), axis 2 runs R (against L).
  const std::array<int64_t, 3> size = {2, 3, 4};
  std::vector<float> values(24);
  for (int a2 = 0; a2 < 4; ++a2) {
    for (int a1 = 0; a1 < 3; ++a1) {
      for (int a0 = 0; a0 < 2; ++a0) values[(a2 * 3 + a1) * 2 + a0] = a0 + 10 * a1 + 100 * a2;
    }
  }
  const qfae::io::FileAxes axes = {{{1, false}, {2, true}, {0, true}}};
  qfae::io::Volume v;
  qfae::io::reorient_to_lps(values, size, {0.5, 2.0, -3.0}, axes, v);
  EXPECT_EQ(v.file_axes, "PIR");
  ASSERT_EQ(v.width, 4);   // L: file axis 2
  ASSERT_EQ(v.height, 2);  // P: file axis 0
  ASSERT_EQ(v.depth, 3);   // S: file axis 1
  EXPECT_EQ(v.spacing, (std::array<double, 3>{3.0, 0.5, 2.0}));
  EXPECT_EQ(v.slice_axis_in_file, 1);
  EXPECT_TRUE(v.slice_flipped);
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < 4; ++i) {
        // L index i is file index 3 - i along axis 2; S index k is 2 - k along axis 1.
        EXPECT_EQ(v.voxels[(k * 2 + j) * 4 + i], j + 10 * (2 - k) + 100 * (3 - i))
            << i << "," << j << "," << k;
      }
    }
  }
  EXPECT_EQ(v.file_slice(0), 2);
  const qfae::io::FileAxes twice_l = {{{0, false}, {0, true}, {2, false}}};
  EXPECT_THROW(qfae::io::reorient_to_lps(values, size, {1, 1, 1}, twice_l, v),
               std::invalid_argument);
  EXPECT_THROW(qfae::io::reorient_to_lps(std::vector<float>(5), size, {1, 1, 1}, axes, v),
               std::invalid_argument);
}
