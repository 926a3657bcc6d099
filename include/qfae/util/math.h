// Small numeric helpers: smoothstep for the image generators, numpy-style percentiles for
// thresholds, intensity windows and bootstrap intervals.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "qfae/util/error.h"

namespace qfae {

inline constexpr double kTwoPi = 6.283185307179586;

// 0 below lo, 1 above hi, the cubic 3t^2 - 2t^3 of t = (x - lo) / (hi - lo) between.
inline double smoothstep(double lo, double hi, double x) {
  const double t = std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
  return t * t * (3.0 - 2.0 * t);
}

// The q-quantile (0..1) of `values` with linear interpolation between order statistics
// (numpy.quantile's default), in O(n). UserError when `values` is empty or q is outside [0, 1].
template <class T>
double quantile(std::vector<T> values, double q) {
  if (values.empty()) throw UserError("percentile of an empty set of values");
  if (!(q >= 0 && q <= 1)) {
    throw UserError("percentile " + std::to_string(100 * q) + " is outside [0, 100]");
  }
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lo), values.end());
  const double a = values[lo];
  if (lo + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(lo) + 1,
                                     values.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

// The p-th percentile (0..100): quantile(values, p / 100), as numpy.percentile.
template <class T>
double percentile(std::vector<T> values, double p) {
  if (!(p >= 0 && p <= 100)) {
    throw UserError("percentile " + std::to_string(p) + " is outside [0, 100]");
  }
  return quantile(std::move(values), p / 100.0);
}

}  // namespace qfae
