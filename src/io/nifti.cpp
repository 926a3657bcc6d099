// Reading NIfTI volumes with libnifti2 (nifti2_io reads NIfTI-1 and NIfTI-2) and turning them into
// LPS voxel order; every failure is a UserError naming the file. Stubs when the build has none.
#include "qfae/io/nifti.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

#if QFAE_HAVE_NIFTI
#include <nifti2_io.h>
#endif

namespace qfae::io {

bool is_nifti_file(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends = [&](const std::string& s) {
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".nii") || ends(".nii.gz") || ends(".hdr");
}

#if QFAE_HAVE_NIFTI

bool have_nifti() { return true; }

namespace {

struct NiftiDeleter {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};

struct ZnzCloser {
  znzFile file;
  ~ZnzCloser() {
    if (!znz_isnull(file)) znzclose(file);
  }
};

template <class T>
int64_t count_non_finite(const std::vector<char>& bytes) {
  int64_t n = 0;
  for (size_t at = 0; at + sizeof(T) <= bytes.size(); at += sizeof(T)) {
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    n += std::isfinite(v) ? 0 : 1;
  }
  return n;
}

// libnifti sets NaN and infinite float voxels to 0 while it reads them (nifti_read_buffer), without
// a word, so they are counted in the file's raw data: read once more, float files only.
int64_t count_non_finite_in_file(const std::string& path, const nifti_image& nim) {
  if (nim.datatype != DT_FLOAT32 && nim.datatype != DT_FLOAT64) return 0;
  nifti_image* header = nullptr;
  ZnzCloser fp{nifti_image_open(path.c_str(), const_cast<char*>("rb"), &header)};
  const std::unique_ptr<nifti_image, NiftiDeleter> owned(header);
  std::vector<char> bytes(static_cast<size_t>(nim.nvox * nim.nbyper));
  int64_t offset = header ? header->iname_offset : 0;
  if (header && offset < 0) offset = nifti_get_filesize(header->iname) - int64_t(bytes.size());
  const bool ok = header && !znz_isnull(fp.file) && offset >= 0 &&
                  znzseek(fp.file, offset, SEEK_SET) >= 0 &&
                  znzread(bytes.data(), 1, bytes.size(), fp.file) == bytes.size();
  if (!ok) {
    throw UserError("NIfTI volume '" + path + "' cannot be read again to count its NaN voxels");
  }
  if (header->byteorder != nifti_short_order()) {
    nifti_swap_Nbytes(nim.nvox, nim.nbyper, bytes.data());
  }
  return nim.datatype == DT_FLOAT32 ? count_non_finite<float>(bytes)
                                    : count_non_finite<double>(bytes);
}

// The file's voxels as float in file order (i fastest), scaled by scl_slope/inter; NaN and
// infinities become 0 and are counted in `non_finite` (libnifti's zeros included).
std::vector<float> to_float(const nifti_image& nim, const std::string& path, int64_t* non_finite) {
  const int64_t n = nim.nx * nim.ny * nim.nz;
  std::vector<float> out(static_cast<size_t>(n));
  auto convert = [&](const auto* src) {
    for (int64_t v = 0; v < n; ++v) out[v] = static_cast<float>(src[v]);
  };
  switch (nim.datatype) {
    case DT_UINT8:
      convert(static_cast<const uint8_t*>(nim.data));
      break;
    case DT_INT8:
      convert(static_cast<const int8_t*>(nim.data));
      break;
    case DT_INT16:
      convert(static_cast<const int16_t*>(nim.data));
      break;
    case DT_UINT16:
      convert(static_cast<const uint16_t*>(nim.data));
      break;
    case DT_INT32:
      convert(static_cast<const int32_t*>(nim.data));
      break;
    case DT_UINT32:
      convert(static_cast<const uint32_t*>(nim.data));
      break;
    case DT_FLOAT32:
      convert(static_cast<const float*>(nim.data));
      break;
    case DT_FLOAT64:
      convert(static_cast<const double*>(nim.data));
      break;
    default:
      throw UserError("NIfTI volume '" + path + "' has datatype " +
                      nifti_datatype_string(nim.datatype) +
                      "; expected uint8, int8, int16, uint16, int32, uint32, float32 or float64");
  }
  const bool scaled = nim.scl_slope != 0.0 && std::isfinite(nim.scl_slope) &&
                      std::isfinite(nim.scl_inter) && !(nim.scl_slope == 1.0 && nim.scl_inter == 0);
  *non_finite = count_non_finite_in_file(path, nim);  // those libnifti has already set to 0
  for (auto& v : out) {
    if (scaled) v = static_cast<float>(v * nim.scl_slope + nim.scl_inter);
    if (!std::isfinite(v)) {
      v = 0.0f;
      ++*non_finite;
    }
  }
  return out;
}

// The file exists and is not empty (libnifti's own message for these is less clear).
void check_volume_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UserError("NIfTI volume '" + path + "' does not exist or is not a file");
  }
  if (std::filesystem::file_size(path, ec) == 0) {
    throw UserError("NIfTI volume '" + path + "' is empty (0 bytes)");
  }
}

// The header and data of a single 3-D volume with no empty dimension.
std::unique_ptr<nifti_image, NiftiDeleter> open_nifti(const std::string& path) {
  // The library's own messages are multi-line; ours name the file. Set once: it is a global.
  static std::once_flag quiet;
  std::call_once(quiet, [] { nifti_set_debug_level(0); });
  std::unique_ptr<nifti_image, NiftiDeleter> nim(nifti_image_read(path.c_str(), /*read_data=*/1));
  if (!nim || !nim->data) {
    throw UserError("NIfTI volume '" + path +
                    "' cannot be read (not a NIfTI-1/2 file, a bad header, or truncated data)");
  }
  for (int d = 4; d <= 7; ++d) {
    if (nim->dim[0] >= d && nim->dim[d] > 1) {
      throw UserError("NIfTI volume '" + path + "' is " + std::to_string(nim->dim[0]) + "-D with " +
                      std::to_string(nim->dim[d]) + " entries along axis " + std::to_string(d) +
                      "; expected a single 3-D volume");
    }
  }
  if (nim->nx < 1 || nim->ny < 1 || nim->nz < 1) {
    throw UserError("NIfTI volume '" + path + "' has an empty dimension");
  }
  return nim;
}

// Where each file axis points (NIFTI_L2R, ...): sform (preferred, as nibabel), else qform, else
// RAS. Records which one in vol.transform.
std::array<int, 3> orientation_codes(const nifti_image& nim, Volume& vol) {
  std::array<int, 3> codes = {NIFTI_L2R, NIFTI_P2A, NIFTI_I2S};
  if (nim.sform_code > 0) {
    nifti_dmat44_to_orientation(nim.sto_xyz, &codes[0], &codes[1], &codes[2]);
    vol.transform = "sform";
  } else if (nim.qform_code > 0) {
    nifti_dmat44_to_orientation(nim.qto_xyz, &codes[0], &codes[1], &codes[2]);
    vol.transform = "qform";
  } else {
    vol.transform = "none";
    log("io")->warn("'{}' sets neither sform nor qform; its voxel axes are taken as RAS",
                    vol.path);
  }
  return codes;
}

// The orientation codes as file axes: per file axis the patient axis it runs along (-1 for an
// unknown code) and which way.
FileAxes file_axes_of(const std::array<int, 3>& codes) {
  FileAxes axes;
  for (int a = 0; a < 3; ++a) {
    const int c = codes[a];
    axes[a].lps = c == NIFTI_R2L || c == NIFTI_L2R   ? 0
                  : c == NIFTI_A2P || c == NIFTI_P2A ? 1
                  : c == NIFTI_I2S || c == NIFTI_S2I ? 2
                                                     : -1;
    axes[a].reversed = c == NIFTI_L2R || c == NIFTI_P2A || c == NIFTI_S2I;
  }
  return axes;
}

// Each patient axis has exactly one file axis along it.
bool one_file_axis_each(const FileAxes& axes) {
  int seen = 0;
  for (const auto& a : axes) seen |= a.lps >= 0 ? 1 << a.lps : 8;
  return seen == 7;
}

}  // namespace

Volume read_nifti(const std::string& path) {
  check_volume_file(path);
  const auto nim = open_nifti(path);
  Volume vol;
  vol.path = path;
  const auto values = to_float(*nim, path, &vol.non_finite);
  const auto axes = file_axes_of(orientation_codes(*nim, vol));
  vol.file_axes = axes_letters(axes);
  if (!one_file_axis_each(axes)) {
    throw UserError("NIfTI volume '" + vol.path + "' has a degenerate " + vol.transform +
                    " (axes '" + vol.file_axes + "'); cannot tell which way is up");
  }
  reorient_to_lps(values, {nim->nx, nim->ny, nim->nz}, {nim->dx, nim->dy, nim->dz}, axes, vol);
  return vol;
}

#else  // no libnifti2 in this build

bool have_nifti() { return false; }

Volume read_nifti(const std::string& path) {
  throw UserError("cannot read '" + path +
                  "': this build has no NIfTI support (install libnifti2-dev and rebuild)");
}

#endif

}  // namespace qfae::io
