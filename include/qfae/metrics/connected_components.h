// Connected components of a binary mask with 8-connectivity: the regions that AUPRO averages over.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace qfae::metrics {

// 8-connectivity matches BMAD's PRO (skimage.measure.label with its default full connectivity,
// i.e. 8 neighbours in 2-D) and anomalib's CPU path (cv2.connectedComponents, connectivity 8).
struct Components {
  std::int64_t count = 0;            // number of regions
  std::vector<std::int32_t> labels;  // row-major (H*W); 0 background, 1..count in raster order
  std::vector<std::int64_t> areas;   // areas[r - 1] = pixels of region r
};

// mask: row-major H*W, non-zero is foreground.
Components label_components(const std::vector<std::uint8_t>& mask, std::int64_t height,
                            std::int64_t width);

// mask: (H, W) tensor of any dtype on any device; a value > 0.5 is foreground.
Components label_components(const torch::Tensor& mask);

}  // namespace qfae::metrics
