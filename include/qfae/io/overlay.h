// Anomaly-map figures a person can open: the input, the map in colour and the two blended, with
// the ground-truth mask's outline when there is one, side by side in one PNG.
#pragma once
#include <torch/types.h>

#include <string>

namespace qfae::io {

struct OverlayOptions {
  double vmin = 0.0;  // map value drawn as the coldest colour
  double vmax = 1.0;  // map value drawn as the hottest (values above saturate)
  int min_panel = 256;          // small images are enlarged to at least this side for viewing
  double alpha = 0.5;           // weight of the colour map in the blended panel
  std::string caption;          // one line under the panels ("" = none)
};

// image: (C, H, W) or (H, W) float in [0, 1] (C = 1 or 3); map: (H, W) float; mask: (H, W) 0/1,
// or an undefined tensor when there is none. Writes [input | map (jet) | blend + mask outline in
// green] as an 8-bit RGB PNG, creating parent folders. UserError naming the file when it cannot
// be written.
void write_overlay(const std::string& path, const torch::Tensor& image, const torch::Tensor& map,
                   const torch::Tensor& mask, const OverlayOptions& options);

}  // namespace qfae::io
