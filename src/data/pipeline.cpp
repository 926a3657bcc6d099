// load_sample: file -> normalised (3, S, S) image and (1, S, S) mask.
#include "qfae/data/pipeline.h"

#include "qfae/data/transforms.h"
#include "qfae/io/image.h"
#include "qfae/util/error.h"

namespace qfae::data {

LoadedSample load_sample(const Sample& sample, const config::DataConfig& cfg, bool augment,
                         uint64_t seed) {
  const int64_t size = cfg.image_size;
  torch::Tensor image = io::read_image(sample.image);  // (C, H, W) in [0, 1]
  torch::Tensor mask;
  if (!sample.mask.empty()) {
    mask = io::read_mask(sample.mask, cfg.mask_threshold);
    if (mask.size(1) != image.size(1) || mask.size(2) != image.size(2)) {
      throw UserError("mask '" + sample.mask + "' is " + std::to_string(mask.size(2)) + "x" +
                      std::to_string(mask.size(1)) + " but its image '" + sample.image + "' is " +
                      std::to_string(image.size(2)) + "x" + std::to_string(image.size(1)) +
                      " (width x height); they must match");
    }
    mask = resize_nearest(mask, size, size);
  }
  // The published code resizes its 8-bit pictures as uint8 (data.resize_on: uint8).
  image = cfg.resize_on == "uint8" && holds_8bit_values(image)
              ? resize_bilinear_uint8(image, size, size)
              : resize_bilinear(image, size, size);
  if (augment) {
    apply_augment(draw_augment(cfg, size, size, seed), image, mask.defined() ? &mask : nullptr);
  }
  if (image.size(0) == 1) image = image.expand({3, size, size});
  LoadedSample out;
  out.image = ((image - cfg.mean) / cfg.std).contiguous();
  out.mask = mask.defined() ? mask : torch::zeros({1, size, size}, torch::kFloat32);
  return out;
}

}  // namespace qfae::data
