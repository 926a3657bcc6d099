// Procedural "tissue" images and lesions for the demo dataset (see synthetic.h).
#include "qfae/data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "qfae/data/random.h"
#include "qfae/util/math.h"
#include "qfae/io/image.h"

namespace qfae::data {
namespace {

// A sum of a few plane waves with random direction, frequency (cycles per image) and phase.
struct Texture {
  double fx[4], fy[4], phase[4], amp[4];
  Texture(Rng& rng, double f_lo, double f_hi, double a_lo, double a_hi) {
    for (int k = 0; k < 4; ++k) {
      const double f = rng.uniform(f_lo, f_hi), dir = rng.uniform(0, kTwoPi);
      fx[k] = f * std::cos(dir);
      fy[k] = f * std::sin(dir);
      phase[k] = rng.uniform(0, kTwoPi);
      amp[k] = rng.uniform(a_lo, a_hi);
    }
  }
  double at(double u, double v) const {  // u, v in [0, 1)
    double s = 0;
    for (int k = 0; k < 4; ++k) s += amp[k] * std::sin(kTwoPi * (fx[k] * u + fy[k] * v) + phase[k]);
    return s;
  }
};

}  // namespace

SyntheticImage make_synthetic_image(int64_t size, uint64_t seed, bool anomalous) {
  Rng rng(seed);
  const double n = static_cast<double>(size);
  // Organ: a rotated ellipse with a wobbly edge.
  const double cx = n * rng.uniform(0.44, 0.56), cy = n * rng.uniform(0.44, 0.56);
  const double ax = n * rng.uniform(0.30, 0.40), ay = n * rng.uniform(0.26, 0.36);
  const double theta = rng.uniform(0, kTwoPi / 2), wobble = rng.uniform(0.02, 0.06);
  const double wobble_phase = rng.uniform(0, kTwoPi);
  const double tissue = rng.uniform(0.45, 0.6), background = rng.uniform(0.02, 0.08);
  const double inner_scale = rng.uniform(0.25, 0.4), inner_dark = rng.uniform(0.08, 0.18);
  const Texture organ_tex(rng, 0.5, 3.0, 0.015, 0.04);
  // Lesion: an irregular blob inside the organ.
  const double lr = rng.uniform(0.15, 0.6), lphi = rng.uniform(0, kTwoPi);
  const double lx =
      cx + lr * (ax * std::cos(lphi) * std::cos(theta) - ay * std::sin(lphi) * std::sin(theta));
  const double ly =
      cy + lr * (ax * std::cos(lphi) * std::sin(theta) + ay * std::sin(lphi) * std::cos(theta));
  const double radius = std::max(2.0, n * rng.uniform(0.05, 0.11));
  const double q1 = rng.uniform(0, kTwoPi), q2 = rng.uniform(0, kTwoPi);
  const double shift = (rng.uniform() < 0.5 ? -1.0 : 1.0) * rng.uniform(0.18, 0.3);
  const Texture lesion_tex(rng, 4.0, 9.0, 0.01, 0.025);

  auto normal = torch::empty({size, size}, torch::kFloat32);
  auto image = torch::empty({size, size}, torch::kFloat32);
  auto mask = torch::zeros({size, size}, torch::kFloat32);
  float* pn = normal.data_ptr<float>();
  float* pi = image.data_ptr<float>();
  float* pm = mask.data_ptr<float>();
  const double ct = std::cos(theta), st = std::sin(theta);
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
      const double u = ((px - cx) * ct + (py - cy) * st) / ax;
      const double v = (-(px - cx) * st + (py - cy) * ct) / ay;
      const double r = std::hypot(u, v), phi = std::atan2(v, u);
      const double edge = 1.0 + wobble * std::sin(3 * phi + wobble_phase);
      const double inside_px = (edge - r) * std::min(ax, ay);  // ~ distance to the edge in px
      const double organ = smoothstep(-1.5, 1.5, inside_px);
      const double inner = 1.0 - smoothstep(inner_scale * 0.8, inner_scale, r);
      double value = tissue + organ_tex.at(px / n, py / n) - inner_dark * inner;
      value = background + organ * (value - background) + 0.01 * rng.normal();
      value = std::clamp(value, 0.0, 1.0);
      pn[y * size + x] = static_cast<float>(value);
      double out = value;
      if (anomalous) {
        const double dx = px - lx, dy = py - ly, psi = std::atan2(dy, dx);
        const double rad =
            radius * (1 + 0.2 * std::sin(3 * psi + q1) + 0.1 * std::sin(5 * psi + q2));
        const double d = rad - std::hypot(dx, dy);  // > 0 inside the lesion
        const double alpha = smoothstep(-1.5, 1.5, d);
        out = std::clamp(value + alpha * (shift + lesion_tex.at(px / n, py / n)), 0.0, 1.0);
        pm[y * size + x] = d >= 0 ? 1.0f : 0.0f;
      }
      pi[y * size + x] = static_cast<float>(out);
    }
  }
  return {image, normal, mask};
}

void write_synthetic_dataset(const std::string& root, int64_t image_size, int64_t n_train,
                             int64_t n_val, int64_t n_test_normal, int64_t n_test_anomalous,
                             uint64_t seed) {
  namespace fs = std::filesystem;
  const fs::path base(root);
  auto write_split = [&](const fs::path& dir, const char* prefix, int64_t count, uint64_t split,
                         bool anomalous) {
    for (int64_t i = 0; i < count; ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "%s_%04lld.png", prefix, static_cast<long long>(i));
      const auto s = make_synthetic_image(
          image_size, mix_seed(mix_seed(seed) ^ (split << 32) ^ static_cast<uint64_t>(i)),
          anomalous);
      io::write_png((dir / "img" / name).string(), s.image);
      if (anomalous) io::write_png((dir / "label" / name).string(), s.mask);
    }
  };
  write_split(base / "train" / "good", "train", n_train, 1, false);
  write_split(base / "valid" / "good", "valid", n_val, 2, false);
  write_split(base / "test" / "good", "good", n_test_normal, 3, false);
  write_split(base / "test" / "Ungood", "ungood", n_test_anomalous, 4, true);
}

}  // namespace qfae::data
