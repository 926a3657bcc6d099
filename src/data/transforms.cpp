// Resampling and augmentation loops on float (C, H, W) tensors (see transforms.h for semantics).
#include "qfae/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "qfae/data/random.h"

namespace qfae::data {
namespace {

int64_t py_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }  // half to even

// Source taps of one output index along one axis: [start, start + weights.size()).
struct Taps {
  std::vector<int64_t> start;
  std::vector<std::vector<double>> weights;  // resize_bilinear multiplies them as float
};

Taps triangle_taps(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = scale >= 1.0 ? scale : 1.0;  // triangle stretched when shrinking
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  t.start.resize(out);
  t.weights.resize(out);
  for (int64_t i = 0; i < out; ++i) {
    const double center = scale * (static_cast<double>(i) + 0.5);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    std::vector<double> w;
    double total = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      const double v = std::max(0.0, 1.0 - std::abs((static_cast<double>(j) - center + 0.5) * inv));
      w.push_back(v);
      total += v;
    }
    t.start[i] = lo;
    for (double v : w) t.weights[i].push_back(total > 0 ? v / total : 0.0);
  }
  return t;
}

}  // namespace

AugmentParams draw_augment(const config::DataConfig& cfg, int64_t height, int64_t width,
                           uint64_t seed) {
  Rng rng(seed);
  AugmentParams p;
  // RandomResizedCrop.get_params.
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(cfg.crop_ratio_min), log_hi = std::log(cfg.crop_ratio_max);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * rng.uniform(cfg.crop_scale_min, cfg.crop_scale_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = py_round(std::sqrt(target * aspect));
    const int64_t h = py_round(std::sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      p.top = rng.below(height - h + 1);
      p.left = rng.below(width - w + 1);
      p.height = h;
      p.width = w;
      found = true;
    }
  }
  if (!found) {  // centre crop at the nearest allowed ratio
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    p.width = width;
    p.height = height;
    if (in_ratio < cfg.crop_ratio_min) {
      p.height = py_round(static_cast<double>(width) / cfg.crop_ratio_min);
    } else if (in_ratio > cfg.crop_ratio_max) {
      p.width = py_round(static_cast<double>(height) * cfg.crop_ratio_max);
    }
    p.top = (height - p.height) / 2;
    p.left = (width - p.width) / 2;
  }
  p.angle_deg = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg);
  p.vflip = rng.uniform() < cfg.vflip_prob;
  p.brightness = rng.uniform(std::max(0.0, 1.0 - cfg.brightness), 1.0 + cfg.brightness);
  p.contrast = rng.uniform(std::max(0.0, 1.0 - cfg.contrast), 1.0 + cfg.contrast);
  p.brightness_first = rng.uniform() < 0.5;
  return p;
}

torch::Tensor resize_bilinear(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(image.dim() == 3, "resize_bilinear: expected (C, H, W), got ", image.sizes());
  const auto src = image.to(torch::kFloat32).contiguous();
  const int64_t c = src.size(0), in_h = src.size(1), in_w = src.size(2);
  if (in_h == out_h && in_w == out_w) return src.clone();
  const Taps tx = triangle_taps(in_w, out_w), ty = triangle_taps(in_h, out_h);
  std::vector<float> tmp(static_cast<size_t>(c * in_h * out_w));  // horizontal pass
  const float* s = src.data_ptr<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t y = 0; y < in_h; ++y) {
      const float* row = s + (ch * in_h + y) * in_w;
      float* dst = tmp.data() + (ch * in_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        double acc = 0.0;
        const auto& w = tx.weights[x];
        for (size_t k = 0; k < w.size(); ++k) {
          acc += static_cast<float>(w[k]) * row[tx.start[x] + k];
        }
        dst[x] = static_cast<float>(acc);
      }
    }
  }
  auto out = torch::empty({c, out_h, out_w}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  for (int64_t ch = 0; ch < c; ++ch) {  // vertical pass
    for (int64_t y = 0; y < out_h; ++y) {
      const auto& w = ty.weights[y];
      float* dst = o + (ch * out_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        double acc = 0.0;
        for (size_t k = 0; k < w.size(); ++k) {
          acc += static_cast<float>(w[k]) *
                 tmp[(ch * in_h + ty.start[y] + static_cast<int64_t>(k)) * out_w + x];
        }
        dst[x] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

namespace {

// One axis of resize_bilinear_uint8: fixed-point taps with `bits` fractional bits, the most that
// keep the largest weight below 2^15 (at most 22).
struct FixedTaps {
  std::vector<int64_t> start;
  std::vector<std::vector<int32_t>> weights;
  int bits = 0;
};

FixedTaps fixed_taps(int64_t in, int64_t out) {
  const Taps t = triangle_taps(in, out);
  double largest = 0.0;
  for (const auto& w : t.weights) {
    for (double v : w) largest = std::max(largest, v);
  }
  FixedTaps f;
  f.start = t.start;
  for (f.bits = 0; f.bits < 22; ++f.bits) {
    if (static_cast<int>(0.5 + largest * static_cast<double>(1 << (f.bits + 1))) >= (1 << 15)) {
      break;
    }
  }
  const double one = static_cast<double>(1 << f.bits);
  for (const auto& w : t.weights) {
    std::vector<int32_t> q;
    for (double v : w) {
      const double x = v * one;
      q.push_back(static_cast<int32_t>(x < 0 ? x - 0.5 : x + 0.5));
    }
    f.weights.push_back(std::move(q));
  }
  return f;
}

}  // namespace

torch::Tensor resize_bilinear_uint8(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(image.dim() == 3, "resize_bilinear_uint8: expected (C, H, W), got ", image.sizes());
  auto cur = (image.to(torch::kFloat64) * 255.0).round().clamp(0, 255).to(torch::kInt32)
                 .contiguous();  // (C, H, W) 0..255
  const int64_t c = cur.size(0);
  const auto pass = [&](const torch::Tensor& src, int64_t in_h, int64_t in_w, int64_t oh,
                        int64_t ow, bool horizontal) {
    const FixedTaps t = horizontal ? fixed_taps(in_w, ow) : fixed_taps(in_h, oh);
    auto dst = torch::empty({c, oh, ow}, torch::kInt32);
    const int32_t* s = src.data_ptr<int32_t>();
    int32_t* d = dst.data_ptr<int32_t>();
    const int64_t half = int64_t{1} << std::max(t.bits - 1, 0);
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < oh; ++y) {
        for (int64_t x = 0; x < ow; ++x) {
          const int64_t i = horizontal ? x : y;
          int64_t acc = t.bits > 0 ? half : 0;
          for (size_t k = 0; k < t.weights[i].size(); ++k) {
            const int64_t at = t.start[i] + static_cast<int64_t>(k);
            const int64_t v = horizontal ? s[(ch * in_h + y) * in_w + at]
                                         : s[(ch * in_h + at) * in_w + x];
            acc += t.weights[i][k] * v;
          }
          d[(ch * oh + y) * ow + x] =
              static_cast<int32_t>(std::clamp<int64_t>(acc >> t.bits, 0, 255));
        }
      }
    }
    return dst;
  };
  int64_t h = cur.size(1), w = cur.size(2);
  if (w != out_w) cur = pass(cur, h, w, h, out_w, /*horizontal=*/true), w = out_w;
  if (h != out_h) cur = pass(cur, h, w, out_h, w, /*horizontal=*/false), h = out_h;
  return cur.to(torch::kFloat32) / 255.0f;
}

bool holds_8bit_values(const torch::Tensor& image) {
  const auto x = image.to(torch::kFloat64) * 255.0;
  return (x - x.round()).abs().max().item<double>() <= 255.0 * 1e-6;
}

torch::Tensor resize_nearest(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(image.dim() == 3, "resize_nearest: expected (C, H, W), got ", image.sizes());
  const int64_t in_h = image.size(1), in_w = image.size(2);
  auto index = [](int64_t in, int64_t out) {
    std::vector<int64_t> idx(out);
    for (int64_t i = 0; i < out; ++i) {
      const double pos = (static_cast<double>(i) + 0.5) * static_cast<double>(in) / out;
      idx[i] = std::min<int64_t>(static_cast<int64_t>(std::floor(pos)), in - 1);
    }
    return torch::tensor(idx, torch::kInt64);
  };
  return image.index_select(1, index(in_h, out_h)).index_select(2, index(in_w, out_w)).contiguous();
}

torch::Tensor rotate(const torch::Tensor& image, double angle_deg, bool bilinear) {
  TORCH_CHECK(image.dim() == 3, "rotate: expected (C, H, W), got ", image.sizes());
  const auto src = image.to(torch::kFloat32).contiguous();
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  const double rad = angle_deg * M_PI / 180.0, cs = std::cos(rad), sn = std::sin(rad);
  const double cx = (static_cast<double>(w) - 1.0) / 2.0, cy = (static_cast<double>(h) - 1.0) / 2.0;
  auto out = torch::zeros_like(src);
  const float* s = src.data_ptr<float>();
  float* o = out.data_ptr<float>();
  auto at = [&](int64_t ch, int64_t y, int64_t x) -> double {
    return (x < 0 || y < 0 || x >= w || y >= h) ? 0.0 : s[(ch * h + y) * w + x];
  };
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const double xo = static_cast<double>(x) - cx, yo = static_cast<double>(y) - cy;
      const double xi = cs * xo - sn * yo + cx, yi = sn * xo + cs * yo + cy;  // inverse map
      for (int64_t ch = 0; ch < c; ++ch) {
        double v;
        if (bilinear) {
          const double x0 = std::floor(xi), y0 = std::floor(yi), fx = xi - x0, fy = yi - y0;
          const auto ix = static_cast<int64_t>(x0), iy = static_cast<int64_t>(y0);
          v = (1 - fy) * ((1 - fx) * at(ch, iy, ix) + fx * at(ch, iy, ix + 1)) +
              fy * ((1 - fx) * at(ch, iy + 1, ix) + fx * at(ch, iy + 1, ix + 1));
        } else {
          v = at(ch, static_cast<int64_t>(std::nearbyint(yi)),
                 static_cast<int64_t>(std::nearbyint(xi)));
        }
        o[(ch * h + y) * w + x] = static_cast<float>(v);
      }
    }
  }
  return out;
}

torch::Tensor adjust_brightness(const torch::Tensor& image, double factor) {
  auto out = image.to(torch::kFloat32).contiguous().clone();
  float* p = out.data_ptr<float>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    p[i] = std::min(1.0f, std::max(0.0f, static_cast<float>(p[i] * factor)));
  }
  return out;
}

torch::Tensor adjust_contrast(const torch::Tensor& image, double factor) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
              "adjust_contrast: expected (1|3, H, W), got ", image.sizes());
  auto out = image.to(torch::kFloat32).contiguous().clone();
  float* p = out.data_ptr<float>();
  const int64_t plane = out.size(1) * out.size(2);
  double sum = 0.0;  // sequential double sum: identical on every thread
  for (int64_t i = 0; i < plane; ++i) {
    sum += out.size(0) == 1 ? p[i] : 0.299 * p[i] + 0.587 * p[plane + i] + 0.114 * p[2 * plane + i];
  }
  const double mean = sum / static_cast<double>(plane);
  for (int64_t i = 0; i < out.numel(); ++i) {
    const double v = factor * p[i] + (1.0 - factor) * mean;
    p[i] = static_cast<float>(std::min(1.0, std::max(0.0, v)));
  }
  return out;
}

namespace {

// torchvision's _blend on a uint8 tensor: levels * ratio + other * (1 - ratio) in float32,
// clamped to [0, 255], truncated (the conversion back to uint8); `image` holds k / 255.
torch::Tensor blend_uint8(const torch::Tensor& image, double ratio, float other) {
  auto out = image.to(torch::kFloat32).contiguous().clone();
  float* p = out.data_ptr<float>();
  const auto r = static_cast<float>(ratio), alpha = static_cast<float>(1.0 - ratio);
  for (int64_t i = 0; i < out.numel(); ++i) {
    const float level = std::nearbyint(p[i] * 255.0f);
    const float v = std::fma(alpha, other, level * r);
    p[i] = std::trunc(std::min(255.0f, std::max(0.0f, v))) / 255.0f;
  }
  return out;
}

}  // namespace

torch::Tensor adjust_brightness_uint8(const torch::Tensor& image, double factor) {
  return blend_uint8(image, factor, 0.0f);
}

torch::Tensor adjust_contrast_uint8(const torch::Tensor& image, double factor) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
              "adjust_contrast_uint8: expected (1|3, H, W), got ", image.sizes());
  const auto levels = (image.to(torch::kFloat32) * 255.0f).round().contiguous();
  const int64_t plane = levels.size(1) * levels.size(2);
  const float* l = levels.data_ptr<float>();
  const float* g = levels.size(0) == 3 ? l + plane : l;
  const float* b = levels.size(0) == 3 ? l + 2 * plane : l;
  double sum = 0.0;
  for (int64_t i = 0; i < plane; ++i) {
    // r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114), then floor_().
    const float grey = std::fma(0.114f, b[i], std::fma(0.587f, g[i], l[i] * 0.2989f));
    sum += std::floor(grey);
  }
  return blend_uint8(image, factor, static_cast<float>(sum / static_cast<double>(plane)));
}

void apply_augment(const AugmentParams& p, torch::Tensor& image, torch::Tensor* mask,
                   bool as_uint8) {
  const int64_t h = image.size(1), w = image.size(2);
  const bool has_mask = mask != nullptr && mask->defined();
  if (p.top != 0 || p.left != 0 || p.height != h || p.width != w) {
    auto crop = [&](const torch::Tensor& t) {
      return t.slice(1, p.top, p.top + p.height).slice(2, p.left, p.left + p.width);
    };
    image = as_uint8 ? resize_bilinear_uint8(crop(image), h, w) : resize_bilinear(crop(image), h, w);
    if (has_mask) *mask = resize_nearest(crop(*mask), h, w);
  }
  if (p.angle_deg != 0.0) {
    image = rotate(image, p.angle_deg, /*bilinear=*/!as_uint8);
    if (has_mask) *mask = rotate(*mask, p.angle_deg, /*bilinear=*/false);
  }
  if (p.vflip) {
    image = image.flip({1}).contiguous();
    if (has_mask) *mask = mask->flip({1}).contiguous();
  }
  const auto brightness = as_uint8 ? adjust_brightness_uint8 : adjust_brightness;
  const auto contrast = as_uint8 ? adjust_contrast_uint8 : adjust_contrast;
  if (p.brightness_first) {
    image = contrast(brightness(image, p.brightness), p.contrast);
  } else {
    image = brightness(contrast(image, p.contrast), p.brightness);
  }
}

}  // namespace qfae::data
