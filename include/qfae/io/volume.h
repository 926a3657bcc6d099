// A 3-D volume in one fixed patient orientation (LPS), whatever file it came from (NIfTI, a DICOM
// series), and the one routine that puts a file's voxels in that order.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qfae::io {

// A 3-D volume in LPS voxel order (DICOM's patient axes): the column index i grows towards the
// subject's Left, the row index j towards Posterior, the slice index k towards Superior. So a
// fixed-k slice, read row by row, is an axial image seen from the feet (the radiological
// convention): anterior at the top, the subject's right on the image's left, and k = 0 is the
// most inferior slice.
struct Volume {
  std::string path;
  int64_t width = 0;          // columns (i, towards L)
  int64_t height = 0;         // rows (j, towards P)
  int64_t depth = 0;          // slices (k, towards S)
  std::vector<float> voxels;  // (k * height + j) * width + i, the file's values (rescaled)
  std::array<double, 3> spacing{1, 1, 1};  // mm along i, j, k
  std::string file_axes;  // where the file's own i, j, k axes point, e.g. "RAS" (i -> Right, ...)
  // What gave the axes: "sform", "qform" or "none" (NIfTI), "ImageOrientationPatient" (DICOM).
  std::string transform;
  int slice_axis_in_file = 2;  // the file's voxel axis (0, 1, 2) that became k
  bool slice_flipped = false;  // k runs against that axis (file index = n - 1 - k)
  int64_t non_finite = 0;      // NaN or infinite voxels in the file, read as 0 (callers report)

  const float* slice(int64_t k) const { return voxels.data() + k * width * height; }
  // The slice index as the file numbers it along its own axis (for viewers and manifests).
  int64_t file_slice(int64_t k) const { return slice_flipped ? depth - 1 - k : k; }
};

// Where one of a file's voxel axes points: the patient axis it is nearest (0 L, 1 P, 2 S) and
// whether it runs against it (towards R, A or I).
struct FileAxis {
  int lps = 0;
  bool reversed = false;
};
using FileAxes = std::array<FileAxis, 3>;

// "RAS", "LPS", ...: one letter per file axis, where it points.
std::string axes_letters(const FileAxes& axes);

// The nearest patient axes of a file's three voxel axes, given as direction vectors in LPS
// (mm or unit length): of the six ways to give each file axis its own patient axis, the one whose
// cosines have the largest product, each axis then pointing the way its cosine's sign says.
// nullopt when the directions are degenerate (a zero or non-finite vector, or two parallel ones).
std::optional<FileAxes> nearest_axes(const std::array<std::array<double, 3>, 3>& directions);

// The voxels of a file, `values` in its own order (axis 0 fastest, `size` voxels along each axis,
// `spacing` mm apart; a spacing <= 0 is taken as 1), reordered into `vol` as LPS: sets its
// width, height, depth, voxels, spacing, file_axes, slice_axis_in_file and slice_flipped; nothing
// is resampled (an oblique file comes out as if it were aligned with its nearest axes). `axes`
// must give each patient axis to exactly one file axis (std::invalid_argument otherwise).
void reorient_to_lps(const std::vector<float>& values, const std::array<int64_t, 3>& size,
                     const std::array<double, 3>& spacing, const FileAxes& axes, Volume& vol);

}  // namespace qfae::io
