// Small numeric helpers shared by the image generators.
#pragma once
#include <algorithm>

namespace qfae {

inline constexpr double kTwoPi = 6.283185307179586;

// 0 below lo, 1 above hi, the cubic 3t^2 - 2t^3 of t = (x - lo) / (hi - lo) between.
inline double smoothstep(double lo, double hi, double x) {
  const double t = std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
  return t * t * (3.0 - 2.0 * t);
}

}  // namespace qfae
