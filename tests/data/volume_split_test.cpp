// Split assignment for volume datasets: counts from ratios, seeded subject splits, and slice
// blocks whose splits stay more than 2 * gap slices apart.
#include "qfae/data/volume_split.h"

#include <gtest/gtest.h>

#include <map>

using qfae::data::Split;

TEST(VolumeSplit, CountsFollowTheRatios) {
  using C = std::array<int64_t, 3>;
  EXPECT_EQ(qfae::data::split_counts(10, {0.7, 0.1, 0.2}), (C{7, 1, 2}));
  EXPECT_EQ(qfae::data::split_counts(3, {0.7, 0.1, 0.2}), (C{1, 1, 1}));  // at least one each
  EXPECT_EQ(qfae::data::split_counts(2, {0.7, 0.1, 0.2}), (C{2, 0, 0}));  // train first
  EXPECT_EQ(qfae::data::split_counts(1, {0.7, 0.1, 0.2}), (C{1, 0, 0}));
  EXPECT_EQ(qfae::data::split_counts(100, {7, 1, 2}), (C{70, 10, 20}));  // ratios are relative
  EXPECT_EQ(qfae::data::split_counts(4, {0.5, 0.0, 0.5}), (C{2, 0, 2}));
}

TEST(VolumeSplit, SubjectsAreSplitBySeed) {
  const auto a = qfae::data::split_subjects(20, {0.6, 0.2, 0.2}, 1);
  std::map<Split, int> n;
  for (auto s : a) ++n[s];
  EXPECT_EQ(n[Split::kTrain], 12);
  EXPECT_EQ(n[Split::kVal], 4);
  EXPECT_EQ(n[Split::kTest], 4);
  EXPECT_EQ(a, qfae::data::split_subjects(20, {0.6, 0.2, 0.2}, 1));
  EXPECT_NE(a, qfae::data::split_subjects(20, {0.6, 0.2, 0.2}, 2));
}

TEST(VolumeSplit, SliceBlocksKeepSplitsApart) {
  std::vector<int64_t> kept;
  for (int64_t k = 5; k < 125; ++k) {
    if (k != 40) kept.push_back(k);  // a hole where a slice was dropped for little foreground
  }
  const int64_t block = 10, gap = 2;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto s = qfae::data::split_slices(kept, {0.7, 0.1, 0.2}, block, gap, seed);
    ASSERT_EQ(s.size(), kept.size());
    std::map<Split, int> n;
    for (size_t a = 0; a < kept.size(); ++a) {
      ++n[s[a]];
      // Slices of one block share its split (or are dropped at its edge).
      for (size_t b = 0; b < kept.size(); ++b) {
        if (s[a] == Split::kNone || s[b] == Split::kNone || s[a] == s[b]) continue;
        EXPECT_GT(std::abs(kept[a] - kept[b]), 2 * gap) << "seed " << seed;
        EXPECT_NE((kept[a] - 5) / block, (kept[b] - 5) / block);
      }
    }
    // 12 blocks: 9 train, 1 val, 2 test (rounded), minus the gaps.
    EXPECT_GT(n[Split::kTrain], 0);
    EXPECT_GT(n[Split::kVal], 0);
    EXPECT_GT(n[Split::kTest], 0);
    EXPECT_GT(n[Split::kNone], 0);
    EXPECT_LE(n[Split::kNone], 2 * gap * 2 * 3);  // at most 2 gaps per held-out block
    // Held-out blocks are spread out: no two of them are neighbours.
    std::map<int64_t, Split> block_split;
    for (size_t a = 0; a < kept.size(); ++a) {
      if (s[a] != Split::kNone) block_split[(kept[a] - 5) / block] = s[a];
    }
    for (const auto& [b, split] : block_split) {
      if (split == Split::kTrain || !block_split.count(b + 1)) continue;
      EXPECT_EQ(block_split[b + 1], Split::kTrain) << "seed " << seed << " block " << b;
    }
  }
  EXPECT_TRUE(qfae::data::split_slices({}, {0.7, 0.1, 0.2}, 10, 2, 0).empty());
}
