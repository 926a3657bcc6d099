// Slice datasets from volumes (`qfae prepare --from/--volume/--dicom`): axial slices written in
// the BMAD layout (train/good, valid/good, test/good, test/Ungood with label/), manifest.json
// saying where every file came from, and a typed summary of what was written.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qfae/data/synthetic_lesions.h"
#include "qfae/data/volume_slices.h"
#include "qfae/data/volume_sources.h"

namespace qfae::data {

struct SliceDatasetOptions {
  NormaliseOptions normalise;
  double min_foreground = 0.1;    // drop slices with a smaller foreground fraction
  int64_t min_lesion_pixels = 1;  // anomalous: >= this many label > 0 pixels; 1..this-1: dropped
  int64_t image_size = 0;         // 0: the slice padded to a square, unresized
  int bit_depth = 8;              // of the images (masks are always 8-bit 0/255)
  std::array<double, 3> split{0.7, 0.1, 0.2};  // train / val / test ratios
  std::string split_by = "auto";   // subject | slice | auto (slice with one subject, else subject)
  int64_t block = 16;              // slice splits: neighbouring slices per block
  int64_t gap = 2;                 // slice splits: slices dropped on each side of a split change
  bool val_anomalies = false;      // also write anomalous val slices (valid/Ungood) and lesions
  bool synthetic_lesions = false;  // test normals also get lesioned copies in test/Ungood
  int64_t lesion_copies = 1;       // lesioned copies per normal test (and val) slice
  LesionOptions lesions;
  uint64_t seed = 42;
  int64_t threads = 0;  // subjects read in parallel; 0 = hardware threads (at most 8)
};

// Why a slice was left out, in the order of their manifest names (slice_drop_name), which is the
// order manifest.json's "dropped" lists them in.
enum class SliceDrop {
  kAnomalousInTrain,    // a lesion, in a slice that would have gone to train (normal only)
  kAnomalousInVal,      // a lesion, in a slice that would have gone to val (without val_anomalies)
  kLesionLostInResize,  // the lesion's few pixels vanished when the mask was resized
  kLittleForeground,    // foreground fraction < min_foreground
  kNoRoomForLesion,     // a synthetic lesion found no room in the slice (that copy is missing)
  kSmallLesion,         // 1..min_lesion_pixels-1 lesion pixels: neither normal nor anomalous
  kSplitGap,            // within `gap` slices of a change of split (slice splits)
};
// The manifest's name: "anomalous_in_train", "little_foreground", ...
const char* slice_drop_name(SliceDrop reason);

// Slices written to one split.
struct SliceCounts {
  int64_t normal = 0;
  int64_t anomalous = 0;
};

// One value per split, under the dataset's folder names.
template <typename T>
struct PerSplit {
  T train{}, valid{}, test{};
};

// What write_slice_dataset wrote: the totals of manifest.json, which also lists every file and
// volume.
struct SliceDatasetSummary {
  bool by_slice = false;                 // split by blocks of slices; else by subject
  PerSplit<SliceCounts> slices;          // per split: normal and anomalous slices written
  PerSplit<int64_t> subjects;            // per split: subjects with a slice in it
  std::map<SliceDrop, int64_t> dropped;  // reasons that dropped slices, with how many
  int64_t volumes = 0;                   // volumes sliced
  int64_t volumes_with_non_finite = 0;   // of them, with NaN or infinite voxels (or their label)
  int64_t non_finite_voxels = 0;         // NaN or infinite voxels read as 0, volumes and labels
};

// Slices every source and writes the BMAD tree under `out` (folders created as needed; existing
// files of the same name are overwritten), then `out`/manifest.json; returns its totals.
// Per slice, in order: foreground fraction < min_foreground -> dropped; label > 0 pixels in
// 1..min_lesion_pixels-1 -> dropped (neither clearly normal nor anomalous); otherwise anomalous
// when the label has lesion pixels, else normal. Splits: by subject (split_subjects) or by slice
// block (split_slices). Train keeps normal slices only; val keeps normal slices (plus anomalies
// with val_anomalies); test keeps both. File names: <subject>_z<slice>.png, lesioned copies
// <subject>_z<slice>_lesion<c>.png; masks have the image's name under label/.
// Manifest: "files" (file, mask, subject, volume, label_volume, slice, file_slice, label, split,
// anomaly = none|segmentation|synthetic, lesion_pixels, for synthetic ones lesions = {count,
// bright}, and dicom_file where a slice is one file of a DICOM series), "counts" per split,
// "subjects" per split, "dropped" per reason, "non_finite_voxels" (NaN/inf voxels read as 0, over
// all volumes; each is also warned about), "volumes" (source = nifti|dicom, axes, size, spacing,
// normalisation, non_finite_voxels and label_non_finite_voxels; a DICOM series also series_uid,
// series_number, dicom_folder, dicom_files), "options".
// UserError naming the file for unreadable volumes, mismatched labels or a failed write.
SliceDatasetSummary write_slice_dataset(const std::vector<VolumeSource>& sources,
                                        const SliceDatasetOptions& options, const std::string& out);

}  // namespace qfae::data
