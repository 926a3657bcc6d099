// Per-volume normalisation and axial slice extraction (see volume_slices.h).
#include "qfae/data/volume_slices.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "qfae/data/transforms.h"
#include "qfae/util/error.h"
#include "qfae/util/math.h"

namespace qfae::data {
namespace {

// (H, W) zeros-padded to a centred square; `from` points at H * W floats.
torch::Tensor padded_square(const float* from, int64_t h, int64_t w) {
  const int64_t side = std::max(h, w);
  auto out = torch::zeros({side, side}, torch::kFloat32);
  float* po = out.data_ptr<float>();
  const int64_t top = (side - h) / 2, left = (side - w) / 2;
  for (int64_t y = 0; y < h; ++y) {
    std::copy(from + y * w, from + (y + 1) * w, po + (y + top) * side + left);
  }
  return out;
}

void check_slice(const io::Volume& v, int64_t k) {
  TORCH_CHECK(k >= 0 && k < v.depth, "slice ", k, " out of range for '", v.path, "' with ", v.depth,
              " slices");
}

}  // namespace

NormalisedVolume normalise_volume(io::Volume volume, const NormaliseOptions& options) {
  NormalisedVolume out;
  auto& vox = volume.voxels;
  if (vox.empty()) throw UserError("volume '" + volume.path + "' has no voxels");
  const float vmin = *std::min_element(vox.begin(), vox.end());
  std::vector<float> above;
  for (float v : vox) {
    if (v > vmin) above.push_back(v);
  }
  if (above.empty()) {
    throw UserError("volume '" + volume.path + "' is constant (" + std::to_string(vmin) +
                    "): no foreground to slice");
  }
  const double high_all = percentile(above, std::clamp(options.high_percentile, 0.0, 100.0));
  const double level = vmin + options.foreground_level * (high_all - vmin);
  out.foreground.resize(vox.size());
  std::vector<float> fg_values;
  fg_values.reserve(above.size());
  for (size_t i = 0; i < vox.size(); ++i) {
    out.foreground[i] = vox[i] > level ? 1 : 0;
    if (out.foreground[i]) fg_values.push_back(vox[i]);
  }
  if (fg_values.empty()) {
    throw UserError("volume '" + volume.path + "': no voxel is above the foreground level " +
                    std::to_string(level));
  }
  out.low = percentile(fg_values, std::clamp(options.low_percentile, 0.0, 100.0));
  out.high = percentile(std::move(fg_values), std::clamp(options.high_percentile, 0.0, 100.0));
  if (!(out.high > out.low)) out.high = out.low + 1.0;  // nearly constant foreground
  const double scale = 1.0 / (out.high - out.low);
  for (size_t i = 0; i < vox.size(); ++i) {
    vox[i] = out.foreground[i]
                 ? static_cast<float>(std::clamp((vox[i] - out.low) * scale, 0.0, 1.0))
                 : 0.0f;
  }
  out.volume = std::move(volume);
  return out;
}

std::vector<SliceStats> slice_stats(const NormalisedVolume& volume, const io::Volume* label) {
  const auto& v = volume.volume;
  if (label && (label->width != v.width || label->height != v.height || label->depth != v.depth)) {
    throw UserError("label volume '" + label->path + "' is " + std::to_string(label->width) + "x" +
                    std::to_string(label->height) + "x" + std::to_string(label->depth) +
                    " but its image '" + v.path + "' is " + std::to_string(v.width) + "x" +
                    std::to_string(v.height) + "x" + std::to_string(v.depth) +
                    " (after reorienting both to LPS)");
  }
  const int64_t plane = v.width * v.height;
  std::vector<SliceStats> stats(static_cast<size_t>(v.depth));
  for (int64_t k = 0; k < v.depth; ++k) {
    int64_t fg = 0, lesion = 0;
    const uint8_t* f = volume.foreground.data() + k * plane;
    for (int64_t p = 0; p < plane; ++p) fg += f[p];
    if (label) {
      const float* l = label->slice(k);
      for (int64_t p = 0; p < plane; ++p) lesion += l[p] > 0 ? 1 : 0;
    }
    stats[k] = {k, static_cast<double>(fg) / static_cast<double>(plane), lesion};
  }
  return stats;
}

torch::Tensor slice_image(const io::Volume& volume, int64_t k, int64_t size) {
  check_slice(volume, k);
  auto square = padded_square(volume.slice(k), volume.height, volume.width);
  if (size <= 0 || size == square.size(0)) return square;
  return resize_bilinear(square.unsqueeze(0), size, size).squeeze(0).clamp(0, 1);
}

torch::Tensor slice_mask(const io::Volume& label, int64_t k, int64_t size) {
  check_slice(label, k);
  auto square = (padded_square(label.slice(k), label.height, label.width) > 0).to(torch::kFloat32);
  if (size <= 0 || size == square.size(0)) return square;
  return resize_nearest(square.unsqueeze(0), size, size).squeeze(0);
}

torch::Tensor slice_foreground(const NormalisedVolume& volume, int64_t k, int64_t size) {
  const auto& v = volume.volume;
  check_slice(v, k);
  const int64_t plane = v.width * v.height;
  std::vector<float> fg(static_cast<size_t>(plane));
  std::copy(volume.foreground.begin() + k * plane, volume.foreground.begin() + (k + 1) * plane,
            fg.begin());
  auto square = padded_square(fg.data(), v.height, v.width);
  if (size <= 0 || size == square.size(0)) return square;
  // Bilinear with antialiasing averages the footprint: 1 only where all of it was foreground.
  const auto soft = resize_bilinear(square.unsqueeze(0), size, size).squeeze(0);
  return (soft > 0.999f).to(torch::kFloat32);
}

}  // namespace qfae::data
