// NIfTI-1/2 volumes (.nii, .nii.gz, .hdr/.img) read into float voxels in one fixed orientation, so
// that slicing never has to think about the file's axes. Needs Debian's libnifti2-dev at build
// time (QFAE_HAVE_NIFTI); without it read_nifti throws a UserError that says so.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qfae::io {

// True when this build reads NIfTI files (CMake found libnifti2-dev).
bool have_nifti();

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
  std::vector<float> voxels;  // (k * height + j) * width + i, scaled by scl_slope/inter
  std::array<double, 3> spacing{1, 1, 1};  // mm along i, j, k
  std::string file_axes;  // where the file's own i, j, k axes point, e.g. "RAS" (i -> Right, ...)
  std::string transform;  // which header transform gave the axes: "sform", "qform" or "none"
  int slice_axis_in_file = 2;  // the file's voxel axis (0, 1, 2) that became k
  bool slice_flipped = false;  // k runs against that axis (file index = n - 1 - k)
  int64_t non_finite = 0;      // NaN or infinite voxels in the file, read as 0 (callers report)

  const float* slice(int64_t k) const { return voxels.data() + k * width * height; }
  // The slice index as the file numbers it along its own axis (for viewers and manifests).
  int64_t file_slice(int64_t k) const { return slice_flipped ? depth - 1 - k : k; }
};

// Reads a NIfTI-1 or NIfTI-2 volume, gzipped or not. Orientation comes from the sform when its
// code is set, else from the qform, else (neither set, old Analyze files) the voxel axes are taken
// as RAS. Oblique volumes are snapped to their nearest axes (no resampling). Datatypes: uint8,
// int8, int16, uint16, int32, uint32, float32, float64; values are v * scl_slope + scl_inter when
// scl_slope is non-zero, NaN and infinities become 0 (counted in Volume::non_finite; saying so is
// the caller's job). A 4-D file must hold a single volume.
// UserError naming the file when it is missing, not NIfTI, truncated, of another datatype or
// shape, or when this build has no NIfTI support.
Volume read_nifti(const std::string& path);

// True when the name ends in .nii, .nii.gz or .hdr (any case).
bool is_nifti_file(const std::string& path);

}  // namespace qfae::io
