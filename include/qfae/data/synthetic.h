// Synthetic demo data: grey "tissue" images (a textured organ on a dark background) and test
// anomalies (soft-edged lesions inside the organ) with exact masks, in the BMAD layout.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace qfae::data {

struct SyntheticImage {
  torch::Tensor image;   // (H, W) float32 in [0, 1]
  torch::Tensor normal;  // the same image without its lesion (== image when not anomalous)
  torch::Tensor mask;    // (H, W) float32 0/1, the lesion (all zeros when not anomalous)
};

// One image of side `size` from `seed`. The organ is an ellipse with a wobbly soft edge, a darker
// inner structure, low-frequency texture and fine noise; a lesion is an irregular blob inside the
// organ, brighter or darker than the tissue under it and with its own texture, blended in over a
// 1.5 px soft edge. The mask is exactly the blob (blend weight >= 1/2), so pixels that differ from
// `normal` lie within 2 px of it.
SyntheticImage make_synthetic_image(int64_t size, uint64_t seed, bool anomalous);

// Writes a BMAD tree under `root` of 8-bit grey PNGs: train/good/img, valid/good/img,
// test/good/img, test/Ungood/img and the 0/255 masks test/Ungood/label (same file names).
void write_synthetic_dataset(const std::string& root, int64_t image_size, int64_t n_train,
                             int64_t n_val, int64_t n_test_normal, int64_t n_test_anomalous,
                             uint64_t seed);

}  // namespace qfae::data
