// Synthetic lesions painted into normal slices: irregular soft-edged blobs inside the foreground
// whose intensity is shifted relative to the tissue under them, with their own texture, and exact
// masks. Used by `qfae prepare --synthetic-lesions` to make test anomalies from healthy volumes.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace qfae::data {

struct LesionOptions {
  double min_size = 0.06;  // lesion radius as a fraction of the image side (drawn log-uniform)
  double max_size = 0.15;
  double min_contrast = 0.15;  // c: how far beyond the tissue under it (0..1 scale), uniform
  double max_contrast = 0.35;
  double bright_fraction = 0.5;  // chance that a lesion is brighter (else darker) than its tissue
  int64_t max_count = 1;         // lesions per image, drawn uniform in 1..max_count
};

struct LesionedImage {
  torch::Tensor image;  // (H, W) float32 in [0, 1]
  torch::Tensor mask;   // (H, W) float32 0/1
  int64_t count = 0;    // lesions placed (0: no room in the foreground; image and mask unchanged)
  int64_t bright = 0;   // how many of them are brighter than their tissue (the rest darker)
};

// Adds lesions to `image` ((H, W) float in [0, 1]) inside `foreground` ((H, W), > 0.5 = tissue).
// Each lesion is an ellipse with a wobbly outline (a few angular harmonics), rotated, of radius R
// drawn from the options times the image side (at least 2 px), blended in over a soft edge with
// weight alpha = smoothstep(-1.5, 1.5, d), d the signed radial distance inside the outline in the
// frame where the ellipse is a circle (|d| is never less than the true distance in px).
// Placement: the whole blended region (alpha > 0) lies on foreground pixels, clear of earlier
// lesions and of the image border, where the lesion has room (below): 150 tries with the drawn
// sign, then 150 with either sign, shrinking R by 0.7 after each 50 of a round.
// Intensity, relative to the tissue under the lesion: with c the contrast, p10 / p90 the 10th /
// 90th percentiles of that tissue, a bright lesion's level is p90 + c and a dark one's p10 - c,
// plus the lesion's own texture t (plane waves and pixel noise, |t| <= c/3). Each pixel moves
// towards that level, and at least c/3 in the lesion's direction:
//   out = v + alpha * s * max(s * (level + t - v), c/3),   s = +1 bright, -1 dark,
// which replaces the tissue's own pattern (white / grey matter) with the lesion's. The sign is
// drawn with bright_fraction; a place where that way has no room (the level or a pixel would
// leave [0, 1]) is not used, and only when no place has room is the sign turned over. So on T1
// bright lesions sit in grey matter, a lesion in bright white matter is dark rather than
// invisible, and nothing is ever clipped.
// Mask: the pixels with alpha >= 1/2 (d >= 0); each changes by at least c/6, every changed pixel
// is in the foreground and within 2 px of the mask.
// Same inputs and seed, same output.
LesionedImage add_synthetic_lesions(const torch::Tensor& image, const torch::Tensor& foreground,
                                    const LesionOptions& options, uint64_t seed);

}  // namespace qfae::data
