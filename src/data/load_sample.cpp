// load_sample: file -> normalised (3, S, S) image and (1, S, S) mask.
#include "qfae/data/load_sample.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "qfae/data/transforms.h"
#include "qfae/io/image.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::data {

namespace {
std::atomic<bool> g_warned_shape{false};
}  // namespace

bool far_from_input(int64_t width, int64_t height, int64_t image_size) {
  const int64_t shorter = std::min(width, height), longer = std::max(width, height);
  return shorter * 4 < image_size || longer > 4 * shorter;
}

void warn_if_far_from_input(const std::string& path, int64_t width, int64_t height,
                            int64_t image_size) {
  if (!far_from_input(width, height, image_size) || g_warned_shape.exchange(true)) return;
  log("data")->warn("image '{}' is {}x{} px (width x height), far from the model's {}x{} input: it "
                    "is stretched to fit, which shows little of what the model learned (said "
                    "once; other such images are not named)",
                    path, width, height, image_size, image_size);
}

torch::Tensor boxes_to_mask(const std::vector<Box>& boxes, int64_t height, int64_t width) {
  auto mask = torch::zeros({1, height, width}, torch::kFloat32);
  auto m = mask.accessor<float, 3>();
  // Pixel (r, c) has its centre at (c + 0.5, r + 0.5): inside [x, x + w) when
  // ceil(x - 0.5) <= c < ceil(x + w - 0.5).
  auto first = [](double from, int64_t n) {
    return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(from - 0.5)), 0, n);
  };
  for (const auto& b : boxes) {
    const int64_t c0 = first(b.x, width), c1 = first(b.x + b.width, width);
    const int64_t r0 = first(b.y, height), r1 = first(b.y + b.height, height);
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = c0; c < c1; ++c) m[0][r][c] = 1.0f;
    }
  }
  return mask;
}

LoadedSample load_sample(const Sample& sample, const config::DataConfig& cfg, bool augment,
                         uint64_t seed) {
  const int64_t size = cfg.image_size;
  io::DicomWindow window;
  window.mode = cfg.dicom_window;
  if (cfg.dicom_range.size() == 2) {
    window.lo = cfg.dicom_range[0];
    window.hi = cfg.dicom_range[1];
  }
  torch::Tensor image = io::read_any_image(sample.image, window);  // (C, H, W) in [0, 1]
  warn_if_far_from_input(sample.image, image.size(2), image.size(1), size);
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
  } else if (!sample.boxes.empty()) {
    mask = resize_nearest(boxes_to_mask(sample.boxes, image.size(1), image.size(2)), size, size);
  }
  // The published code resizes and augments its 8-bit pictures as uint8 tensors
  // (data.resize_on: uint8).
  const bool as_uint8 = cfg.resize_on == "uint8" && holds_8bit_values(image);
  image = as_uint8 ? resize_bilinear_uint8(image, size, size) : resize_bilinear(image, size, size);
  if (augment) {
    apply_augment(draw_augment(cfg, size, size, seed), image, mask.defined() ? &mask : nullptr,
                  as_uint8);
  }
  if (image.size(0) == 1) image = image.expand({3, size, size});
  LoadedSample out;
  out.image = ((image - cfg.mean) / cfg.std).contiguous();
  out.mask = mask.defined() ? mask : torch::zeros({1, size, size}, torch::kFloat32);
  return out;
}

}  // namespace qfae::data
