// The checks and advice of `qfae prepare` on hand-built slice dataset summaries: when a dataset is
// refused, the whole message (hand-written here) with the options to change, and the warnings.
#include "qfae/data/volume_dataset_checks.h"

#include <gtest/gtest.h>

namespace {

using qfae::data::SliceDatasetOptions;
using qfae::data::SliceDatasetSummary;
using qfae::data::SliceDrop;

// A dataset qfae can use: normal slices in train and test, lesions in test, nothing dropped.
SliceDatasetSummary usable_slice_summary() {
  SliceDatasetSummary s;
  s.slices.train.normal = 70;
  s.slices.valid.normal = 12;
  s.slices.test = {20, 31};
  s.volumes = 1;
  return s;
}

}  // namespace

TEST(VolumeDatasetChecks, AUsableDatasetPassesWithoutWarnings) {
  const auto s = usable_slice_summary();
  EXPECT_EQ(qfae::data::unusable_slice_dataset(s, {}), std::nullopt);
  EXPECT_TRUE(qfae::data::slice_dataset_warnings(s, "out/manifest.json").empty());
  EXPECT_EQ(qfae::data::dropped_slices_text(s, {}), "none");
}

TEST(VolumeDatasetChecks, NoTrainingSliceNamesEveryOptionThatDecided) {
  auto s = usable_slice_summary();
  s.by_slice = true;
  s.slices.train.normal = 0;
  // Inserted out of order: the message follows the manifest's order of reasons.
  s.dropped[SliceDrop::kSplitGap] = 4;
  s.dropped[SliceDrop::kLittleForeground] = 3;
  s.dropped[SliceDrop::kAnomalousInTrain] = 12;
  const SliceDatasetOptions o;  // split 0.7 0.1 0.2, block 16, gap 2, min_foreground 0.1
  EXPECT_EQ(qfae::data::unusable_slice_dataset(s, o),
            "the dataset would have no training slice (qfae train needs normal slices in "
            "train/good). Dropped: 12 slices would have gone to train but show a lesion (train "
            "keeps lesion-free slices only), 3 slices had too little foreground (--min-foreground "
            "0.1), 4 slices fell in the --gap 2 between splits. To fix it, change --split (now 0.7 "
            "0.1 0.2), --block (now 16; smaller blocks spread every split over the volume), --gap "
            "(now 2), or lower --min-foreground (now 0.1)");
}

TEST(VolumeDatasetChecks, NoNormalTestSliceIsRefusedOnlyWhenATestSplitWasAskedFor) {
  auto s = usable_slice_summary();
  s.slices.test = {0, 7};
  s.dropped[SliceDrop::kSmallLesion] = 2;
  SliceDatasetOptions o;
  o.split = {0.6, 0.2, 0.2};
  o.min_lesion_pixels = 5;
  EXPECT_EQ(qfae::data::unusable_slice_dataset(s, o),
            "the dataset would have no normal test slice (the test split holds 7 slices with "
            "lesions; image AUROC needs normal ones too). Dropped: 2 slices had a lesion under "
            "--min-lesion-pixels 5. To fix it, change --split (now 0.6 0.2 0.2) or give more "
            "volumes, some without lesions");
  o.split = {0.8, 0.2, 0};
  EXPECT_EQ(qfae::data::unusable_slice_dataset(s, o), std::nullopt);
}

TEST(VolumeDatasetChecks, DroppedSlicesSayWhyEach) {
  auto s = usable_slice_summary();
  s.dropped[SliceDrop::kNoRoomForLesion] = 1;
  s.dropped[SliceDrop::kLesionLostInResize] = 2;
  s.dropped[SliceDrop::kAnomalousInVal] = 3;
  EXPECT_EQ(qfae::data::dropped_slices_text(s, {}),
            "3 slices would have gone to val but show a lesion, 2 slices lost their lesion in "
            "resizing (--image-size), 1 slices had no room for a synthetic lesion");
}

TEST(VolumeDatasetChecks, WarnsOfNonFiniteVoxelsAndATestSplitWithoutLesions) {
  auto s = usable_slice_summary();
  s.volumes = 3;
  s.volumes_with_non_finite = 2;
  s.non_finite_voxels = 7;
  s.slices.test.anomalous = 0;
  const auto warnings = qfae::data::slice_dataset_warnings(s, "out/manifest.json");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "7 NaN or infinite voxels in 2 of 3 volumes were read as 0 (non_finite_voxels in "
            "out/manifest.json)");
  EXPECT_EQ(warnings[1],
            "the test split has no anomalous slice (no label volume marks one); "
            "--synthetic-lesions adds lesioned copies of the normal test slices");
}
