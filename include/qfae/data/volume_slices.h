// Axial slices of one volume: per-volume intensity normalisation, the foreground, per-slice
// statistics, and slice images (padded to a square, optionally resized) as tensors ready to write.
// Orientation is io::Volume's: row 0 anterior, the subject's right on the left (radiological).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "qfae/io/volume.h"

namespace qfae::data {

struct NormaliseOptions {
  double low_percentile = 0.5;    // of the foreground voxels, mapped to 0
  double high_percentile = 99.5;  // mapped to 1
  // Foreground: voxels above min + level * (high - min), where min is the volume's minimum and
  // high its high percentile of the voxels above min. 0 = everything brighter than the minimum,
  // right for skull-stripped volumes (BraTS, ch2bet) whose background is exactly the minimum.
  double foreground_level = 0.0;
};

// A volume with intensities in [0, 1] (background 0) and its foreground, same voxel order.
struct NormalisedVolume {
  io::Volume volume;                // voxels: clamp((v - low) / (high - low), 0, 1), 0 outside
  std::vector<uint8_t> foreground;  // 1 where the voxel is foreground
  double low = 0, high = 0;         // the raw values that became 0 and 1
};

// Normalises per volume: low and high are the given percentiles (linear interpolation between
// order statistics, as numpy's default) of the foreground voxels. UserError naming the file when
// the volume has no foreground (constant).
NormalisedVolume normalise_volume(io::Volume volume, const NormaliseOptions& options);

struct SliceStats {
  int64_t k = 0;                     // slice index (0 = most inferior)
  double foreground_fraction = 0.0;  // foreground pixels / all pixels of the slice
  int64_t lesion_pixels = 0;         // label > 0 pixels (0 without a label volume)
};

// One entry per slice k = 0..depth-1. `label` may be null; when given it must have the volume's
// shape (UserError naming both files otherwise).
std::vector<SliceStats> slice_stats(const NormalisedVolume& volume, const io::Volume* label);

// Slice k as (H, W) float32: padded with zeros to a centred square of side max(height, width),
// then resized to size x size when size > 0. Images use bilinear resampling with antialiasing
// when shrinking (area-like, resize_bilinear); masks use nearest neighbour (resize_nearest).
torch::Tensor slice_image(const io::Volume& volume, int64_t k, int64_t size);
// label > 0 as 0/1.
torch::Tensor slice_mask(const io::Volume& label, int64_t k, int64_t size);
// The foreground as 0/1. At a smaller size a pixel is foreground only when its whole footprint
// was (so a lesion placed on it never touches the background).
torch::Tensor slice_foreground(const NormalisedVolume& volume, int64_t k, int64_t size);

}  // namespace qfae::data
