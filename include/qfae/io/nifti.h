// NIfTI-1/2 volumes (.nii, .nii.gz, .hdr/.img) read into float voxels in one fixed orientation, so
// that slicing never has to think about the file's axes. Needs Debian's libnifti2-dev at build
// time (QFAE_HAVE_NIFTI); without it read_nifti throws a UserError that says so.
#pragma once
#include <string>

#include "qfae/io/volume.h"

namespace qfae::io {

// True when this build reads NIfTI files (CMake found libnifti2-dev).
bool have_nifti();

// Reads a NIfTI-1 or NIfTI-2 volume, gzipped or not. Orientation comes from the sform when its
// code is set, else from the qform, else (neither set, old Analyze files) the voxel axes are taken
// as RAS. Oblique volumes are snapped to their nearest axes (libnifti's
// nifti_dmat44_to_orientation picks them; no resampling). Datatypes: uint8, int8, int16, uint16,
// int32, uint32, float32, float64; values are v * scl_slope + scl_inter when scl_slope is
// non-zero, NaN and infinities become 0 (counted in Volume::non_finite; saying so is the caller's
// job). A 4-D file must hold a single volume.
// UserError naming the file when it is missing, not NIfTI, truncated, of another datatype or
// shape, or when this build has no NIfTI support.
Volume read_nifti(const std::string& path);

// True when the name ends in .nii, .nii.gz or .hdr (any case).
bool is_nifti_file(const std::string& path);

}  // namespace qfae::io
