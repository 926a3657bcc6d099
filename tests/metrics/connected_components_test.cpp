// Connected components: 8-connectivity (diagonal neighbours join), raster-order labels, areas.
#include "qfae/metrics/connected_components.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

using qfae::metrics::label_components;

TEST(ConnectedComponents, DiagonalNeighboursJoinSeparateBlobsDoNot) {
  // 1 . . . 1
  // . 1 . . 1
  // . . . . .
  // 1 1 . . .
  // The diagonal pair is one region (8-connectivity; 4-connectivity would give two).
  const std::vector<std::uint8_t> mask = {1, 0, 0, 0, 1,  //
                                          0, 1, 0, 0, 1,  //
                                          0, 0, 0, 0, 0,  //
                                          1, 1, 0, 0, 0};
  const auto c = label_components(mask, 4, 5);
  ASSERT_EQ(c.count, 3);
  EXPECT_EQ(c.labels[0], 1);
  EXPECT_EQ(c.labels[6], 1);
  EXPECT_EQ(c.labels[4], 2);
  EXPECT_EQ(c.labels[9], 2);
  EXPECT_EQ(c.labels[15], 3);
  EXPECT_EQ(c.labels[16], 3);
  EXPECT_EQ(c.labels[2], 0);
  EXPECT_EQ(c.areas, (std::vector<std::int64_t>{2, 2, 2}));
}

TEST(ConnectedComponents, TensorMaskThresholdsAtHalfAndHandlesEmpty) {
  auto mask = torch::zeros({6, 6});
  EXPECT_EQ(label_components(mask).count, 0);
  mask.index_put_({torch::indexing::Slice(1, 4), torch::indexing::Slice(1, 3)}, 1.0);  // 3x2
  mask.index_put_({5, 5}, 0.4);  // below 0.5: background
  mask.index_put_({0, 5}, 255);  // 0/255 masks work too
  const auto c = label_components(mask);
  ASSERT_EQ(c.count, 2);
  EXPECT_EQ(c.areas, (std::vector<std::int64_t>{1, 6}));  // raster order: (0,5) comes first
}

TEST(ConnectedComponents, SnakeIsOneRegion) {
  // A U shape that a single-pass labeller without merging would split.
  const std::vector<std::uint8_t> mask = {1, 0, 1,  //
                                          1, 0, 1,  //
                                          1, 1, 1};
  const auto c = label_components(mask, 3, 3);
  EXPECT_EQ(c.count, 1);
  EXPECT_EQ(c.areas[0], 7);
}

}  // namespace
