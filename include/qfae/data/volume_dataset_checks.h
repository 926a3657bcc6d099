// What `qfae prepare` checks on a written slice dataset before it keeps it, and the advice it
// gives: from write_slice_dataset's summary and the options it was written with.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "qfae/data/volume_dataset.h"

namespace qfae::data {

// Why the dataset is of no use, with the options to change (their current values) and why slices
// were dropped; nullopt when it is usable. Of no use: no training slice (qfae train needs normal
// slices in train/good), or, when a test split was asked for (split[2] > 0), no normal test slice
// (image metrics need both kinds).
std::optional<std::string> unusable_slice_dataset(const SliceDatasetSummary& summary,
                                                  const SliceDatasetOptions& options);

// Why slices were dropped, one phrase per reason in the manifest's order: "12 slices would have
// gone to train but show a lesion (...), 3 slices had too little foreground (--min-foreground
// 0.1)"; "none" when nothing was dropped.
std::string dropped_slices_text(const SliceDatasetSummary& summary,
                                const SliceDatasetOptions& options);

// What is worth a second look in a usable dataset, one line each: volumes whose NaN or infinite
// voxels were read as 0 (pointing to `manifest` for the counts), a test split without anomalous
// slices.
std::vector<std::string> slice_dataset_warnings(const SliceDatasetSummary& summary,
                                                const std::string& manifest);

}  // namespace qfae::data
