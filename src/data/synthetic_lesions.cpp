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

// The slice being edited: its size and foreground, the image and mask being drawn, and the
// pixels that earlier lesions already cover (alpha > 0).
struct LesionCanvas {
  int64_t h, w;
  const uint8_t* fg;
  float* image;
  float* mask;
  std::vector<int64_t> fg_pixels;  // indices of the foreground pixels, in order
  std::vector<uint8_t> occupied;

  LesionCanvas(int64_t height, int64_t width, const uint8_t* foreground, float* out,
               float* out_mask)
      : h(height),
        w(width),
        fg(foreground),
        image(out),
        mask(out_mask),
        occupied(static_cast<size_t>(height * width), 0) {
    for (int64_t p = 0; p < h * w; ++p) {
      if (fg[p]) fg_pixels.push_back(p);
    }
  }
};

// How a placed lesion shifts the tissue: sign +1 brighter, -1 darker, 0 no room; the level it
// moves the pixels towards.
struct LesionShift {
  double sign = 0, level = 0;
};

// Whether the blob's blended region (alpha > 0) lies on foreground pixels, clear of earlier
// lesions and of the image border; collects the tissue values under it when it does.
bool fits(const Blob& blob, const LesionCanvas& canvas, std::vector<float>* tissue) {
  const int64_t h = canvas.h, w = canvas.w;
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
      if (!canvas.fg[y * w + x] || canvas.occupied[y * w + x]) return false;
      tissue->push_back(canvas.image[y * w + x]);
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

// The radius drawn log-uniform between the options' sizes (fractions of `side`), at least 2 px.
double draw_lesion_radius(Rng& rng, const LesionOptions& options, double side) {
  return std::exp(rng.uniform(std::log(std::max(options.min_size * side, 2.0)),
                              std::log(std::max(options.max_size * side, 2.0))));
}

// The shift that the tissue under a blob leaves room for: the drawn sign, else the other one when
// `either`, else none. Room: the level c beyond the tissue's 90th (10th) percentile, plus the
// texture, and every pixel moved by c/3, must stay inside [0, 1]. Reorders `tissue`.
LesionShift shift_with_room(std::vector<float>& tissue, double contrast, double wanted_sign,
                            bool either) {
  const double p10 = quantile(tissue, 0.1), p90 = quantile(tissue, 0.9);
  const double lo = *std::min_element(tissue.begin(), tissue.end());
  const double hi = *std::max_element(tissue.begin(), tissue.end());
  const bool up = p90 + contrast * 4 / 3 <= 1.0 && hi + contrast / 3 <= 1.0;
  const bool down = p10 - contrast * 4 / 3 >= 0.0 && lo - contrast / 3 >= 0.0;
  LesionShift shift;
  if (wanted_sign > 0 ? up : down) {
    shift.sign = wanted_sign;
  } else if (either && (wanted_sign > 0 ? down : up)) {
    shift.sign = -wanted_sign;
  }
  shift.level = shift.sign > 0 ? p90 + contrast : p10 - contrast;
  return shift;
}

// Moves the blob to random foreground pixels until it fits with room for its shift: 150 tries
// with the drawn sign, then 150 with either; the radius (drawn as `radius`) shrinks every 50.
// Sign 0: no place found.
LesionShift place_lesion(Blob* blob, double radius, double contrast, double wanted_sign,
                         const LesionCanvas& canvas, Rng& rng) {
  LesionShift shift;
  for (int attempt = 0; attempt < 300 && shift.sign == 0; ++attempt) {
    if (attempt % 150 == 0) blob->radius = std::max(2.0, radius);
    if (attempt % 150 > 0 && attempt % 50 == 0) blob->radius = std::max(2.0, blob->radius * 0.7);
    const bool either = attempt >= 150;
    const int64_t p = canvas.fg_pixels[rng.below(static_cast<int64_t>(canvas.fg_pixels.size()))];
    blob->cx = static_cast<double>(p % canvas.w) + 0.5;
    blob->cy = static_cast<double>(p / canvas.w) + 0.5;
    std::vector<float> tissue;  // values under the blended region; empty: does not fit
    if (!fits(*blob, canvas, &tissue)) continue;
    shift = shift_with_room(tissue, contrast, wanted_sign, either);
  }
  return shift;
}

// Blends the placed blob into the image with its own texture, marks its inside (d >= 0) in the
// mask and its blended region as occupied.
void paint_lesion(const Blob& blob, const LesionShift& shift, double contrast, Rng& rng,
                  LesionCanvas* canvas) {
  int64_t y0, y1, x0, x1;
  blob.box(canvas->h, canvas->w, &y0, &y1, &x0, &x1);
  const LesionTexture texture(rng, blob.radius);
  float* po = canvas->image;
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      const double d = blob.distance(x + 0.5, y + 0.5);
      if (d <= -1.5) continue;
      const int64_t p = y * canvas->w + x;
      const double target = shift.level + contrast / 3.0 * texture.at(x + 0.5, y + 0.5, rng);
      // Towards the lesion's level, and at least c/3 in the lesion's direction.
      const double delta = shift.sign * std::max(shift.sign * (target - po[p]), contrast / 3.0);
      const double alpha = smoothstep(-1.5, 1.5, d);
      po[p] = static_cast<float>(std::clamp(po[p] + alpha * delta, 0.0, 1.0));
      if (d >= 0) canvas->mask[p] = 1.0f;
      canvas->occupied[p] = 1;
    }
  }
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
  LesionCanvas canvas(h, w, fg_t.data_ptr<uint8_t>(), out.data_ptr<float>(),
                      mask.data_ptr<float>());
  LesionedImage result{out, mask, 0, 0};
  if (canvas.fg_pixels.empty()) return result;

  Rng rng(mix_seed(seed));
  const double side = static_cast<double>(std::min(h, w));
  const int64_t count = 1 + rng.below(std::max<int64_t>(1, options.max_count));
  for (int64_t lesion = 0; lesion < count; ++lesion) {
    const double radius = draw_lesion_radius(rng, options, side);
    Blob blob(rng, radius);
    const double contrast = rng.uniform(options.min_contrast, options.max_contrast);
    const double wanted_sign = rng.uniform() < options.bright_fraction ? 1.0 : -1.0;
    const LesionShift shift = place_lesion(&blob, radius, contrast, wanted_sign, canvas, rng);
    if (shift.sign == 0) continue;
    paint_lesion(blob, shift, contrast, rng, &canvas);
    ++result.count;
    result.bright += shift.sign > 0 ? 1 : 0;
  }
  return result;
}

}  // namespace qfae::data
