// One sample from file to model input: decode, resize, optional seeded augmentation, 3 channels,
// normalisation; its mask binarised and resized alongside (docs/model.md §6.3).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "qfae/config/config.h"
#include "qfae/data/dataset.h"

namespace qfae::data {

struct LoadedSample {
  torch::Tensor image;  // (3, S, S) float32, normalised with cfg.mean / cfg.std
  torch::Tensor mask;   // (1, S, S) float32 0/1, zeros when the sample has no mask
};

// S = cfg.image_size. The image is resized to S x S with resize_bilinear (torchvision Resize with
// antialias, like PIL; resize_bilinear_uint8 for 8-bit pictures under data.resize_on: uint8),
// then, when `augment`, transformed with draw_augment(cfg, S, S, seed) and apply_augment; grey
// images are replicated to 3 channels; finally (x - mean) / std. The mask is read with
// cfg.mask_threshold (or drawn from the sample's boxes at the image's size), resized with
// resize_nearest and given the same geometry.
// UserError naming the file for unreadable images, and naming both files when the mask's size
// differs from its image's.
// The first image of the process that is far_from_input is named in a warning (once: later ones
// are not).
LoadedSample load_sample(const Sample& sample, const config::DataConfig& cfg, bool augment,
                         uint64_t seed);

// The union of `boxes` as a (1, height, width) float32 0/1 mask: a pixel is 1 when its centre
// lies in a box (so a box at whole-pixel coordinates covers exactly its width x height pixels);
// boxes reaching past the image are clipped to it.
torch::Tensor boxes_to_mask(const std::vector<Box>& boxes, int64_t height, int64_t width);

// True for an image far from the model's square input: its shorter side under a quarter of
// `image_size`, or one side over 4 times the other (1 x N strips, 1 x 1 dots), which resizing can
// only stretch into something the model never saw.
bool far_from_input(int64_t width, int64_t height, int64_t image_size);
// Warns once per process, naming `path`, when far_from_input.
void warn_if_far_from_input(const std::string& path, int64_t width, int64_t height,
                            int64_t image_size);

}  // namespace qfae::data
