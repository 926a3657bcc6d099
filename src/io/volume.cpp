// Putting a file's voxels in LPS order (see volume.h), shared by the NIfTI and DICOM series
// readers so that the axis permutation and flips exist once.
#include "qfae/io/volume.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qfae::io {

std::string axes_letters(const FileAxes& axes) {
  static const char kForward[] = {'L', 'P', 'S'};
  static const char kBackward[] = {'R', 'A', 'I'};
  std::string out;
  for (const auto& a : axes) {
    out += a.lps >= 0 && a.lps < 3 ? (a.reversed ? kBackward[a.lps] : kForward[a.lps]) : '?';
  }
  return out;
}

std::optional<FileAxes> nearest_axes(const std::array<std::array<double, 3>, 3>& directions) {
  std::array<std::array<double, 3>, 3> unit{};
  for (int a = 0; a < 3; ++a) {
    const auto& d = directions[a];
    const double norm = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    if (!(norm > 0) || !std::isfinite(norm)) return std::nullopt;
    for (int c = 0; c < 3; ++c) unit[a][c] = d[c] / norm;
  }
  // The permutation p (file axis a -> patient axis p[a]) with the largest product of |cosines|.
  std::array<int, 3> p = {0, 1, 2}, best = p;
  double best_score = -1;
  do {
    const double score = std::abs(unit[0][p[0]] * unit[1][p[1]] * unit[2][p[2]]);
    if (score > best_score) {
      best_score = score;
      best = p;
    }
  } while (std::next_permutation(p.begin(), p.end()));
  // Two parallel axes (or a flat set of three) leave no permutation with a clear winner.
  if (!(best_score > 1e-6)) return std::nullopt;
  FileAxes out;
  for (int a = 0; a < 3; ++a) out[a] = {best[a], unit[a][best[a]] < 0};
  return out;
}

void reorient_to_lps(const std::vector<float>& values, const std::array<int64_t, 3>& size,
                     const std::array<double, 3>& spacing, const FileAxes& axes, Volume& vol) {
  const int64_t stride[3] = {1, size[0], size[0] * size[1]};
  if (static_cast<int64_t>(values.size()) != size[0] * size[1] * size[2]) {
    throw std::invalid_argument("reorient_to_lps: values do not match the size");
  }
  // Per target axis t (L, P, S): its length, its step in `values`, and where the walk starts.
  int64_t n[3] = {0, 0, 0}, step[3] = {0, 0, 0}, start = 0;
  bool seen[3] = {false, false, false};
  for (int a = 0; a < 3; ++a) {
    const int t = axes[a].lps;
    if (t < 0 || t > 2 || seen[t]) {
      throw std::invalid_argument("reorient_to_lps: the file axes are not a permutation");
    }
    seen[t] = true;
    n[t] = size[a];
    step[t] = axes[a].reversed ? -stride[a] : stride[a];
    if (axes[a].reversed) start += (size[a] - 1) * stride[a];
    vol.spacing[t] = std::abs(spacing[a]) > 0 ? std::abs(spacing[a]) : 1.0;
    if (t == 2) {
      vol.slice_axis_in_file = a;
      vol.slice_flipped = axes[a].reversed;
    }
  }
  vol.file_axes = axes_letters(axes);
  vol.width = n[0];
  vol.height = n[1];
  vol.depth = n[2];
  vol.voxels.resize(values.size());
  float* out = vol.voxels.data();
  for (int64_t k = 0; k < n[2]; ++k) {
    for (int64_t j = 0; j < n[1]; ++j) {
      const int64_t row = start + k * step[2] + j * step[1];
      for (int64_t i = 0; i < n[0]; ++i) *out++ = values[row + i * step[0]];
    }
  }
}

}  // namespace qfae::io
