// Synthetic lesions in normal slices (see synthetic_lesions.h): shape, placement inside the
// foreground, intensity relative to the tissue, texture and mask.
#include "qfae/data/synthetic_lesions.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "qfae/data/random.h"
#include "qfae/util/math.h"

namespace qfae::data {
namespace {

// An irregular blob: an ellipse (radius R, aspect <= 1, rotation) whose outline wobbles with the
// 2nd, 3rd and 5th angular harmonics. distance() is the signed radial distance inside the outline,
// measured in the frame where the ellipse is a circle: never less than the true distance in px.
struct Blob {
  double cx = 0, cy = 0, radius = 0, aspect = 1, cos_t = 1, sin_t = 0;
  double amp[3] = {0, 0, 0}, phase[3] = {0, 0, 0};

  Blob(Rng& rng, double r) : radius(r) {
    aspect = rng.uniform(0.6, 1.0);
    const double theta = rng.uniform(0, kTwoPi);
    cos_t = std::cos(theta);
    sin_t = std::sin(theta);
    for (int h = 0; h < 3; ++h) {
      amp[h] = rng.uniform(0.0, 0.12);
      phase[h] = rng.uniform(0, kTwoPi);
    }
  }
  double distance(double px, double py) const {
    const double dx = px - cx, dy = py - cy;
    const double u = dx * cos_t + dy * sin_t, v = (-dx * sin_t + dy * cos_t) / aspect;
    const double psi = std::atan2(v, u);
    const double edge =
        radius * (1.0 + amp[0] * std::sin(2 * psi + phase[0]) +
                  amp[1] * std::sin(3 * psi + phase[1]) + amp[2] * std::sin(5 * psi + phase[2]));
    return edge - std::hypot(u, v);
  }
  // Bounding box (inclusive) of the blended region, clipped to the image.
  void box(int64_t h, int64_t w, int64_t* y0, int64_t* y1, int64_t* x0, int64_t* x1) const {
    const double reach = radius * 1.4 + 2.0;
    *y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cy - reach)));
    *y1 = std::min<int64_t>(h - 1, static_cast<int64_t>(std::ceil(cy + reach)));
    *x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cx - reach)));
    *x1 = std::min<int64_t>(w - 1, static_cast<int64_t>(std::ceil(cx + reach)));
  }
};

// The lesion's own texture in [-1, 1]: three plane waves with a wavelength of a third to two thirds
// of the radius, plus pixel noise.
struct LesionTexture {
  double fx[3], fy[3], phase[3];
  LesionTexture(Rng& rng, double radius) {
    for (int k = 0; k < 3; ++k) {
      const double f = 1.0 / (radius * rng.uniform(0.33, 0.67)), dir = rng.uniform(0, kTwoPi);
      fx[k] = f * std::cos(dir);
      fy[k] = f * std::sin(dir);
      phase[k] = rng.uniform(0, kTwoPi);
    }
  }
  double at(double px, double py, Rng& rng) const {
    double waves = 0;
    for (int k = 0; k < 3; ++k) waves += std::sin(kTwoPi * (fx[k] * px + fy[k] * py) + phase[k]);
    return std::clamp(0.6 * waves / 3.0 + 0.4 * 0.5 * rng.normal(), -1.0, 1.0);
  }
};

// Whether the blob's blended region (alpha > 0) lies on foreground pixels, clear of earlier
// lesions and of the image border; collects the tissue values under it when it does.
bool fits(const Blob& blob, const uint8_t* fg, const std::vector<uint8_t>& occupied, int64_t h,
          int64_t w, std::vector<float>* tissue, const float* image) {
  const double reach = blob.radius * 1.4 + 2;
  if (blob.cy - reach < 0 || blob.cx - reach < 0 || blob.cy + reach > h || blob.cx + reach > w) {
    return false;
  }
  int64_t y0, y1, x0, x1;
  blob.box(h, w, &y0, &y1, &x0, &x1);
  tissue->clear();
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      if (blob.distance(x + 0.5, y + 0.5) <= -1.5) continue;
      if (!fg[y * w + x] || occupied[y * w + x]) return false;
      tissue->push_back(image[y * w + x]);
    }
  }
  return !tissue->empty();
}

// The q-quantile (nearest rank) of `v`; reorders it.
double quantile(std::vector<float>& v, double q) {
  const auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

LesionedImage add_synthetic_lesions(const torch::Tensor& image, const torch::Tensor& foreground,
                                    const LesionOptions& options, uint64_t seed) {
  TORCH_CHECK(image.dim() == 2 && foreground.sizes() == image.sizes(),
              "add_synthetic_lesions: expected (H, W) image and foreground, got ", image.sizes(),
              " and ", foreground.sizes());
  const int64_t h = image.size(0), w = image.size(1);
  auto out = image.to(torch::kFloat32).contiguous().clone();
  auto mask = torch::zeros({h, w}, torch::kFloat32);
  const auto fg_t = (foreground > 0.5).to(torch::kUInt8).contiguous();
  const uint8_t* fg = fg_t.data_ptr<uint8_t>();
  float* po = out.data_ptr<float>();
  float* pm = mask.data_ptr<float>();
  std::vector<uint8_t> occupied(static_cast<size_t>(h * w), 0);  // earlier lesions, alpha > 0

  std::vector<int64_t> fg_pixels;
  for (int64_t p = 0; p < h * w; ++p) {
    if (fg[p]) fg_pixels.push_back(p);
  }
  LesionedImage result{out, mask, 0, 0};
  if (fg_pixels.empty()) return result;

  Rng rng(mix_seed(seed));
  const double side = static_cast<double>(std::min(h, w));
  const int64_t count = 1 + rng.below(std::max<int64_t>(1, options.max_count));
  for (int64_t lesion = 0; lesion < count; ++lesion) {
    const double radius = std::exp(rng.uniform(std::log(std::max(options.min_size * side, 2.0)),
                                               std::log(std::max(options.max_size * side, 2.0))));
    Blob blob(rng, radius);
    const double contrast = rng.uniform(options.min_contrast, options.max_contrast);
    const double wanted_sign = rng.uniform() < options.bright_fraction ? 1.0 : -1.0;
    double sign = 0, level = 0;
    // 150 tries with the drawn sign, then 150 with either; the radius shrinks every 50.
    for (int attempt = 0; attempt < 300 && sign == 0; ++attempt) {
      if (attempt % 150 == 0) blob.radius = std::max(2.0, radius);
      if (attempt % 150 > 0 && attempt % 50 == 0) blob.radius = std::max(2.0, blob.radius * 0.7);
      const bool either = attempt >= 150;
      const int64_t p = fg_pixels[rng.below(static_cast<int64_t>(fg_pixels.size()))];
      blob.cx = static_cast<double>(p % w) + 0.5;
      blob.cy = static_cast<double>(p / w) + 0.5;
      std::vector<float> tissue;  // values under the blended region; empty: does not fit
      if (!fits(blob, fg, occupied, h, w, &tissue, po)) continue;
      // Room: the level c beyond the tissue's 90th (10th) percentile, plus the texture, and every
      // pixel moved by c/3, must stay inside [0, 1]; else try elsewhere (or the other sign).
      const double p10 = quantile(tissue, 0.1), p90 = quantile(tissue, 0.9);
      const double lo = *std::min_element(tissue.begin(), tissue.end());
      const double hi = *std::max_element(tissue.begin(), tissue.end());
      const bool up = p90 + contrast * 4 / 3 <= 1.0 && hi + contrast / 3 <= 1.0;
      const bool down = p10 - contrast * 4 / 3 >= 0.0 && lo - contrast / 3 >= 0.0;
      if (wanted_sign > 0 ? up : down) {
        sign = wanted_sign;
      } else if (either && (wanted_sign > 0 ? down : up)) {
        sign = -wanted_sign;
      }
      level = sign > 0 ? p90 + contrast : p10 - contrast;
    }
    if (sign == 0) continue;

    int64_t y0, y1, x0, x1;
    blob.box(h, w, &y0, &y1, &x0, &x1);
    const LesionTexture texture(rng, blob.radius);
    for (int64_t y = y0; y <= y1; ++y) {
      for (int64_t x = x0; x <= x1; ++x) {
        const double d = blob.distance(x + 0.5, y + 0.5);
        if (d <= -1.5) continue;
        const int64_t p = y * w + x;
        const double target = level + contrast / 3.0 * texture.at(x + 0.5, y + 0.5, rng);
        // Towards the lesion's level, and at least c/3 in the lesion's direction.
        const double delta = sign * std::max(sign * (target - po[p]), contrast / 3.0);
        const double alpha = smoothstep(-1.5, 1.5, d);
        po[p] = static_cast<float>(std::clamp(po[p] + alpha * delta, 0.0, 1.0));
        if (d >= 0) pm[p] = 1.0f;
        occupied[p] = 1;
      }
    }
    ++result.count;
    result.bright += sign > 0 ? 1 : 0;
  }
  return result;
}

}  // namespace qfae::data
