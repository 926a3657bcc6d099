// The synthetic demo dataset: lesions change only pixels at their mask, the tree indexes as BMAD.
#include "qfae/data/synthetic.h"

#include <gtest/gtest.h>

#include "../support/dilate.h"
#include "../support/run_binary.h"
#include "qfae/data/dataset.h"
#include "qfae/io/image.h"

namespace fs = std::filesystem;
using qfae::test::TempDir;
using qfae::test::dilate;

TEST(Synthetic, LesionsChangeOnlyPixelsNearTheirMask) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const auto s = qfae::data::make_synthetic_image(48, seed, /*anomalous=*/true);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{48, 48}));
    const auto mask = s.mask;
    EXPECT_GT(mask.sum().item<float>(), 4.0f) << seed;
    const auto changed = (s.image - s.normal).abs() > 1e-6;
    const auto outside = changed.logical_and(dilate(mask, 2) < 0.5);
    EXPECT_EQ(outside.sum().item<int64_t>(), 0) << "seed " << seed;
    // Inside the mask the lesion differs clearly from the tissue under it.
    const auto inside_diff = ((s.image - s.normal).abs() * mask).sum() / mask.sum();
    EXPECT_GT(inside_diff.item<float>(), 0.1f) << seed;
    // The organ is brighter than the background in the corner, values stay in [0, 1].
    const auto organ = s.normal.slice(0, 14, 34).slice(1, 14, 34).mean().item<float>();
    const auto corner = s.normal.slice(0, 0, 4).slice(1, 0, 4).mean().item<float>();
    EXPECT_GT(organ, corner + 0.2f) << seed;
    EXPECT_GE(s.image.min().item<float>(), 0.0f);
    EXPECT_LE(s.image.max().item<float>(), 1.0f);
  }
  const auto normal = qfae::data::make_synthetic_image(48, 9, /*anomalous=*/false);
  EXPECT_EQ(normal.mask.sum().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(normal.image, normal.normal));
  const auto other = qfae::data::make_synthetic_image(48, 10, false);
  EXPECT_FALSE(torch::equal(normal.image, other.image));
}

TEST(Synthetic, WritesABmadTreeWithMasksExactlyForAnomalies) {
  TempDir dir;
  qfae::data::write_synthetic_dataset(dir.path().string(), 32, 4, 2, 3, 3, 42);
  qfae::config::DataConfig cfg;
  cfg.root = dir.path().string();
  const auto index = qfae::data::index_dataset(cfg, 42);
  EXPECT_EQ(index.layout, "bmad");
  EXPECT_EQ(index.train.size(), 4u);
  EXPECT_EQ(index.val.size(), 2u);
  ASSERT_EQ(index.test.size(), 6u);
  for (const auto& s : index.test) {
    const bool has_mask = !s.mask.empty();
    EXPECT_EQ(has_mask, s.label == 1) << s.image;
    if (has_mask) EXPECT_GT(qfae::io::read_mask(s.mask, 0.5).sum().item<float>(), 0.0f);
    EXPECT_EQ(qfae::io::read_image(s.image).sizes(), (std::vector<int64_t>{1, 32, 32}));
  }
  // Deterministic: the same seed writes the same pixels.
  TempDir again;
  qfae::data::write_synthetic_dataset(again.path().string(), 32, 4, 2, 3, 3, 42);
  const auto rel = fs::relative(index.test[4].image, dir.path());
  EXPECT_TRUE(torch::equal(qfae::io::read_image(index.test[4].image),
                           qfae::io::read_image((again.path() / rel).string())));
}
