// Test support: tiny NIfTI files written with libnifti2's own API (independent of qfae's reader),
// and brain-like test volumes: an ellipsoid of "tissue" with an optional spherical "tumour".
#pragma once
#if QFAE_HAVE_NIFTI
#include <nifti2_io.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace qfae::test {

using Affine = std::array<std::array<double, 4>, 4>;  // voxel (i, j, k, 1) -> world (x, y, z, 1)

inline Affine ras_affine() { return {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}}; }

struct NiftiFile {
  std::vector<int64_t> dims;   // nx, ny, nz[, nt]
  std::vector<double> values;  // file order: i fastest
  int datatype = DT_FLOAT32;
  double slope = 0, inter = 0;  // scl_slope, scl_inter (0 = unscaled)
  int qform_code = 1;
  Affine qform = ras_affine();
  int sform_code = 0;
  Affine sform = ras_affine();
};

inline void write_nifti(const NiftiFile& f, const std::string& path) {
  int64_t dims[8] = {static_cast<int64_t>(f.dims.size()), 1, 1, 1, 1, 1, 1, 1};
  for (size_t d = 0; d < f.dims.size(); ++d) dims[d + 1] = f.dims[d];
  nifti_image* nim = nifti_make_new_nim(dims, f.datatype, /*data_fill=*/1);
  if (!nim) throw std::runtime_error("nifti_make_new_nim failed");
  if (static_cast<int64_t>(f.values.size()) != nim->nvox) {
    throw std::runtime_error("write_nifti: " + std::to_string(f.values.size()) + " values for " +
                             std::to_string(nim->nvox) + " voxels");
  }
  auto fill = [&](auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    for (int64_t v = 0; v < nim->nvox; ++v) dst[v] = static_cast<T>(f.values[v]);
  };
  switch (f.datatype) {
    case DT_UINT8:
      fill(static_cast<uint8_t*>(nim->data));
      break;
    case DT_INT16:
      fill(static_cast<int16_t*>(nim->data));
      break;
    case DT_UINT16:
      fill(static_cast<uint16_t*>(nim->data));
      break;
    case DT_INT32:
      fill(static_cast<int32_t*>(nim->data));
      break;
    case DT_FLOAT32:
      fill(static_cast<float*>(nim->data));
      break;
    case DT_FLOAT64:
      fill(static_cast<double*>(nim->data));
      break;
    default:
      break;  // other types: left zero (for tests of unsupported datatypes)
  }
  nim->scl_slope = f.slope;
  nim->scl_inter = f.inter;
  nifti_dmat44 q, s;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      q.m[r][c] = f.qform[r][c];
      s.m[r][c] = f.sform[r][c];
    }
  }
  nim->qform_code = f.qform_code;
  nim->qto_xyz = q;
  double dx, dy, dz;
  nifti_dmat44_to_quatern(q, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x,
                          &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  nim->dx = nim->pixdim[1] = dx;
  nim->dy = nim->pixdim[2] = dy;
  nim->dz = nim->pixdim[3] = dz;
  nim->sform_code = f.sform_code;
  nim->sto_xyz = s;
  if (nifti_set_filenames(nim, path.c_str(), 0, 1) != 0) {
    nifti_image_free(nim);
    throw std::runtime_error("nifti_set_filenames failed for " + path);
  }
  nifti_image_write(nim);
  nifti_image_free(nim);
}

// A brain-like RAS volume, float32, background 0: an ellipsoid filling most of the box whose
// value varies smoothly (0.3..0.9 times 1000), with a "tumour" sphere of value 1500 at
// `tumour` (voxel centre, i/j/k) of radius `tumour_r` (none when tumour_r <= 0).
struct TinyBrain {
  int64_t nx = 20, ny = 24, nz = 16;
  std::array<double, 3> tumour{10, 12, 8};
  double tumour_r = 0;

  bool in_brain(int64_t i, int64_t j, int64_t k) const {
    const double u = (i + 0.5 - nx / 2.0) / (nx * 0.45), v = (j + 0.5 - ny / 2.0) / (ny * 0.45);
    const double w = (k + 0.5 - nz / 2.0) / (nz * 0.55);
    return u * u + v * v + w * w < 1.0;
  }
  bool in_tumour(int64_t i, int64_t j, int64_t k) const {
    const double di = i - tumour[0], dj = j - tumour[1], dk = k - tumour[2];
    return tumour_r > 0 && di * di + dj * dj + dk * dk <= tumour_r * tumour_r && in_brain(i, j, k);
  }
  NiftiFile image() const {
    NiftiFile f;
    f.dims = {nx, ny, nz};
    for (int64_t k = 0; k < nz; ++k)
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i) {
          double v = 0;
          if (in_brain(i, j, k)) v = 1000 * (0.6 + 0.3 * std::sin(0.7 * i) * std::cos(0.5 * j));
          if (in_tumour(i, j, k)) v = 1500;
          f.values.push_back(v);
        }
    return f;
  }
  NiftiFile label() const {
    NiftiFile f;
    f.dims = {nx, ny, nz};
    f.datatype = DT_UINT8;
    for (int64_t k = 0; k < nz; ++k)
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i) f.values.push_back(in_tumour(i, j, k) ? 2 : 0);
    return f;
  }
};

}  // namespace qfae::test
#endif  // QFAE_HAVE_NIFTI
