// The checks and advice of `qfae prepare` on a written slice dataset (see volume_dataset_checks.h):
// each names the prepare options that would change the outcome, with their current values.
#include "qfae/data/volume_dataset_checks.h"

#include <fmt/format.h>

namespace qfae::data {
namespace {

// "0.7 0.1 0.2" for the split ratios.
std::string split_ratios_text(const std::array<double, 3>& split) {
  return fmt::format("{:g} {:g} {:g}", split[0], split[1], split[2]);
}

// What happened to the slices dropped for `reason`, naming the option that decided it.
std::string dropped_phrase(SliceDrop reason, const SliceDatasetOptions& o) {
  switch (reason) {
    case SliceDrop::kAnomalousInTrain:
      return "would have gone to train but show a lesion (train keeps lesion-free slices only)";
    case SliceDrop::kAnomalousInVal:
      return "would have gone to val but show a lesion";
    case SliceDrop::kLesionLostInResize:
      return "lost their lesion in resizing (--image-size)";
    case SliceDrop::kLittleForeground:
      return "had too little foreground (--min-foreground " +
             fmt::format("{:g}", o.min_foreground) + ")";
    case SliceDrop::kNoRoomForLesion:
      return "had no room for a synthetic lesion";
    case SliceDrop::kSmallLesion:
      return "had a lesion under --min-lesion-pixels " + std::to_string(o.min_lesion_pixels);
    case SliceDrop::kSplitGap:
      return "fell in the --gap " + std::to_string(o.gap) + " between splits";
  }
  return std::string("were dropped (") + slice_drop_name(reason) + ")";
}

// The options that decide what lands in a split, with their current values.
std::string split_advice(const SliceDatasetSummary& s, const SliceDatasetOptions& o) {
  std::string out = "change --split (now " + split_ratios_text(o.split) + ")";
  if (s.by_slice) {
    out += ", --block (now " + std::to_string(o.block) +
           "; smaller blocks spread every split over the volume)";
    if (s.dropped.count(SliceDrop::kSplitGap)) {
      out += ", --gap (now " + std::to_string(o.gap) + ")";
    }
  } else {
    out += " or give more volumes, some without lesions";
  }
  if (s.dropped.count(SliceDrop::kLittleForeground)) {
    out += ", or lower --min-foreground (now " + fmt::format("{:g}", o.min_foreground) + ")";
  }
  return out;
}

}  // namespace

std::string dropped_slices_text(const SliceDatasetSummary& s, const SliceDatasetOptions& o) {
  std::string out;
  for (const auto& [reason, n] : s.dropped) {
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " slices " + dropped_phrase(reason, o);
  }
  return out.empty() ? "none" : out;
}

std::optional<std::string> unusable_slice_dataset(const SliceDatasetSummary& s,
                                                  const SliceDatasetOptions& o) {
  std::string problem;
  if (s.slices.train.normal == 0) {
    problem = "no training slice (qfae train needs normal slices in train/good)";
  } else if (o.split[2] > 0 && s.slices.test.normal == 0) {
    problem = "no normal test slice (the test split holds " +
              std::to_string(s.slices.test.anomalous) +
              " slices with lesions; image AUROC needs normal ones too)";
  }
  if (problem.empty()) return std::nullopt;
  return "the dataset would have " + problem + ". Dropped: " + dropped_slices_text(s, o) +
         ". To fix it, " + split_advice(s, o);
}

std::vector<std::string> slice_dataset_warnings(const SliceDatasetSummary& s,
                                                const std::string& manifest) {
  std::vector<std::string> out;
  if (s.volumes_with_non_finite > 0) {
    out.push_back(fmt::format(
        "{} NaN or infinite voxels in {} of {} volumes were read as 0 (non_finite_voxels in {})",
        s.non_finite_voxels, s.volumes_with_non_finite, s.volumes, manifest));
  }
  if (s.slices.test.anomalous == 0) {
    out.push_back(
        "the test split has no anomalous slice (no label volume marks one); "
        "--synthetic-lesions adds lesioned copies of the normal test slices");
  }
  return out;
}

}  // namespace qfae::data
