// Resampling and the training augmentations (docs/model.md §6.3) on float (C, H, W) CPU tensors,
// written as plain loops so that results are bit-identical whatever thread runs them. Semantics
// follow torchvision; where tensor and PIL paths differ, the comment says which one is followed.
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "qfae/config/config.h"

namespace qfae::data {

// Random parameters of one sample's augmentation, drawn from its own seed.
struct AugmentParams {
  int64_t top = 0, left = 0, height = 0, width = 0;  // RandomResizedCrop box
  double angle_deg = 0.0;                            // counter-clockwise rotation
  bool vflip = false;
  double brightness = 1.0, contrast = 1.0;  // ColorJitter factors
  bool brightness_first = true;             // ColorJitter applies them in a random order
};

// Draws the parameters for an image of height x width (torchvision's algorithms):
// RandomResizedCrop.get_params (10 tries of area ~ U(scale) * H * W, log-ratio ~ U(log ratio),
// then the centre-crop fallback), angle ~ U(-deg, deg), flip when u < vflip_prob, brightness and
// contrast factors ~ U(max(0, 1 - b), 1 + b), and their order. Uses std::mt19937_64(seed) with our
// own uniform mapping, so the draws are the same on every standard library.
AugmentParams draw_augment(const config::DataConfig& cfg, int64_t height, int64_t width,
                           uint64_t seed);

// Bilinear resize with antialiasing when shrinking (align_corners = false): the triangle filter
// stretched by the scale factor, as PIL's BILINEAR and torch interpolate(antialias=True), which
// torchvision's Resize uses. Enlarging is plain bilinear with edge clamping. (C, H, W) float.
torch::Tensor resize_bilinear(const torch::Tensor& image, int64_t out_h, int64_t out_w);

// The same filter on 8-bit values, computed as torch's uint8 kernel (torchvision's Resize of a
// uint8 tensor, the reference code's order) computes it: per axis, the weights quantised to int16
// fixed point, a rounded integer sum, an 8-bit result; the horizontal pass first, an axis whose
// size does not change left as it is. `image` (C, H, W) float holds k / 255 for integers k in
// [0, 255]; returns the resized k' / 255 as float32.
torch::Tensor resize_bilinear_uint8(const torch::Tensor& image, int64_t out_h, int64_t out_w);

// Whether every value of `image` is k / 255 for an integer k (an 8-bit picture), to 1e-6.
bool holds_8bit_values(const torch::Tensor& image);

// Nearest-neighbour resize sampling at pixel centres, src = floor((dst + 0.5) * in / out), as PIL's
// NEAREST (torch's "nearest-exact"). For masks.
torch::Tensor resize_nearest(const torch::Tensor& image, int64_t out_h, int64_t out_w);

// Rotation by angle_deg counter-clockwise about the image centre, same size, zeros outside.
// Bilinear (grid_sample, align_corners = false, zero padding) or nearest for masks.
torch::Tensor rotate(const torch::Tensor& image, double angle_deg, bool bilinear);

// ColorJitter's brightness (x * factor) and contrast (factor * x + (1 - factor) * mean of the grey
// image, grey = 0.299 R + 0.587 G + 0.114 B as PIL's "L"), both clamped to [0, 1].
torch::Tensor adjust_brightness(const torch::Tensor& image, double factor);
torch::Tensor adjust_contrast(const torch::Tensor& image, double factor);

// The same two on an 8-bit picture as torchvision does them to a uint8 tensor (the published
// code's ColorJitter): `image` holds k / 255; x * factor, or factor * x + (1 - factor) * mean with
// the mean over the grey image floored to whole levels (grey = 0.2989 R + 0.587 G + 0.114 B, a
// one-channel image counting as three equal channels), computed in float32 on the levels, clamped
// to [0, 255] and truncated to a whole level; the result holds k / 255 again.
torch::Tensor adjust_brightness_uint8(const torch::Tensor& image, double factor);
torch::Tensor adjust_contrast_uint8(const torch::Tensor& image, double factor);

// The whole training augmentation of docs/model.md §6.3 on an image already resized to its final
// size: crop box resized back to the same size, rotation, vertical flip, then colour jitter.
// `mask` (1, H, W), when defined, gets the same geometry with nearest sampling and no colour
// change. `as_uint8` (an 8-bit picture under data.resize_on: uint8) follows the published code,
// whose transforms run on uint8 tensors: the crop is resized with resize_bilinear_uint8, the
// rotation takes the nearest pixel (RandomRotation's default) and the jitter works on whole
// levels (the _uint8 functions above). Otherwise: float resizing, bilinear rotation, float jitter.
void apply_augment(const AugmentParams& p, torch::Tensor& image, torch::Tensor* mask,
                   bool as_uint8 = false);

}  // namespace qfae::data
