// Finding, checking and stacking DICOM series (see dicom_series.h). Files are read through
// io/dicom.h, so this file needs no GDCM of its own and builds the same with or without it.
#include "qfae/io/dicom_series.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "qfae/io/dicom.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::io {
namespace {

constexpr double kSameCosine = 1e-4;     // orientations this close are one orientation
constexpr double kSamePosition = 1e-3;   // mm along the normal: one position
constexpr double kEvenStep = 0.05;       // a step this far (relative) from the median is a gap
constexpr size_t kFilesNamed = 4;        // files a message names before "and N more"

using Vec3 = std::array<double, 3>;

struct Slice {
  std::string path;
  DicomHeader header;
  double along = 0;  // ImagePositionPatient projected on the slice normal, mm
};

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// The row direction, the column direction and their normal (the slice direction).
std::array<Vec3, 3> directions(const std::array<double, 6>& o) {
  const Vec3 row = {o[0], o[1], o[2]}, column = {o[3], o[4], o[5]};
  return {row, column, cross(row, column)};
}

// "'a.dcm', 'b.dcm' and 3 more".
std::string file_list(const std::vector<std::string>& paths) {
  std::string out;
  for (size_t i = 0; i < paths.size() && i < kFilesNamed; ++i) {
    out += (i == 0 ? "'" : ", '") + paths[i] + "'";
  }
  if (paths.size() > kFilesNamed) {
    out += " and " + std::to_string(paths.size() - kFilesNamed) + " more";
  }
  return out;
}

std::string mm(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g mm", x);
  return buf;
}

// Every file under `folder` that is DICOM by its name or marker, sorted; counts the others.
std::vector<std::string> dicom_files_under(const std::string& folder, DicomFolder& out) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw UserError("DICOM folder '" + folder + "' does not exist or is not a folder");
  }
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(folder, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::string name = it->path().filename().string();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (name == "DICOMDIR") {
      ++out.dicomdirs;
    } else if (is_dicom_file(it->path().string())) {
      files.push_back(it->path().string());
    } else {
      ++out.other_files;
    }
  }
  if (ec) throw UserError("DICOM folder '" + folder + "' cannot be read: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

// The files of `slices` for which `bad` holds, refused with `problem` when there are any.
template <class Pred>
void refuse_if(const DicomSeries& s, const std::vector<Slice>& slices, const std::string& problem,
               Pred bad) {
  std::vector<std::string> files;
  for (const auto& x : slices) {
    if (bad(x)) files.push_back(x.path);
  }
  if (!files.empty()) throw UserError(s.name() + " " + problem + ": " + file_list(files));
}

// The headers every slice must have, and have alike.
void check_slices_alike(const DicomSeries& s, const std::vector<Slice>& slices) {
  refuse_if(s, slices, "holds multi-frame files (a series of single-frame slices is expected)",
            [](const Slice& x) { return x.header.frames > 1; });
  refuse_if(s, slices, "is colour (qfae stacks grey series only)",
            [](const Slice& x) { return x.header.samples != 1; });
  refuse_if(s, slices, "has slices without ImagePositionPatient (0020,0032)",
            [](const Slice& x) { return !x.header.geometry.position; });
  refuse_if(s, slices, "has slices without ImageOrientationPatient (0020,0037)",
            [](const Slice& x) { return !x.header.geometry.orientation; });
  refuse_if(s, slices, "has slices without a positive PixelSpacing (0028,0030)",
            [](const Slice& x) {
              const auto& p = x.header.geometry.pixel_spacing;
              return !p || !((*p)[0] > 0) || !((*p)[1] > 0);
            });
  const auto& first = slices.front();
  const auto& g = first.header.geometry;
  refuse_if(s, slices,
            "mixes slice sizes: '" + first.path + "' is " + std::to_string(first.header.width) +
                "x" + std::to_string(first.header.height) + " px, these are not",
            [&](const Slice& x) {
              return x.header.width != first.header.width || x.header.height != first.header.height;
            });
  refuse_if(s, slices,
            "mixes orientations (ImageOrientationPatient): these differ from '" + first.path + "'",
            [&](const Slice& x) {
              const auto& o = *x.header.geometry.orientation;
              for (int c = 0; c < 6; ++c) {
                if (std::abs(o[c] - (*g.orientation)[c]) > kSameCosine) return true;
              }
              return false;
            });
  refuse_if(s, slices, "mixes pixel spacings: these differ from '" + first.path + "'",
            [&](const Slice& x) {
              for (int c = 0; c < 2; ++c) {
                const double a = (*x.header.geometry.pixel_spacing)[c], b = (*g.pixel_spacing)[c];
                if (std::abs(a - b) > 1e-4 * b) return true;
              }
              return false;
            });
  const auto d = directions(*g.orientation);
  if (std::abs(dot(d[0], d[0]) - 1) > 1e-2 || std::abs(dot(d[1], d[1]) - 1) > 1e-2 ||
      std::abs(dot(d[0], d[1])) > 1e-2) {
    throw UserError(s.name() + " has an ImageOrientationPatient that is not two perpendicular " +
                    "unit vectors ('" + first.path + "')");
  }
}

// Orders the slices along the normal and sets the slice spacing; refuses duplicate positions and
// uneven steps.
void order_slices(DicomSeries& s, std::vector<Slice>& slices) {
  if (slices.size() < 2) {
    throw UserError(s.name() + " has a single slice ('" + slices[0].path +
                    "'); a volume needs two or more");
  }
  const auto normal = directions(*slices[0].header.geometry.orientation)[2];
  for (auto& x : slices) x.along = dot(*x.header.geometry.position, normal);
  std::stable_sort(slices.begin(), slices.end(),
                   [](const Slice& a, const Slice& b) { return a.along < b.along; });
  std::vector<double> steps;
  std::string duplicates;
  for (size_t i = 0; i + 1 < slices.size(); ++i) {
    steps.push_back(slices[i + 1].along - slices[i].along);
    if (steps.back() < kSamePosition && duplicates.size() < 400) {
      duplicates += (duplicates.empty() ? "'" : "; '") + slices[i].path + "' and '" +
                    slices[i + 1].path + "'";
    }
  }
  if (!duplicates.empty()) {
    throw UserError(s.name() + " has slices at the same position: " + duplicates);
  }
  auto sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double median = sorted[sorted.size() / 2];
  std::string uneven;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (std::abs(steps[i] - median) > kEvenStep * median && uneven.size() < 400) {
      uneven += (uneven.empty() ? "" : "; ") + mm(steps[i]) + " between '" + slices[i].path +
                "' and '" + slices[i + 1].path + "'";
    }
  }
  if (!uneven.empty()) {
    throw UserError(s.name() + " has uneven slice steps (a slice missing?) where the others are " +
                    mm(median) + " apart: " + uneven);
  }
  for (const auto& x : slices) s.files.push_back(x.path);
  const auto& first = slices.front().header;
  s.width = first.width;
  s.height = first.height;
  s.orientation = *first.geometry.orientation;
  const auto& ps = *first.geometry.pixel_spacing;  // between rows, between columns
  s.spacing = {ps[1], ps[0], (slices.back().along - slices.front().along) / steps.size()};
}

// SeriesNumber as a number for sorting; series without one come last.
long long series_order(const std::string& number) {
  char* end = nullptr;
  const long long n = std::strtoll(number.c_str(), &end, 10);
  return number.empty() || end == number.c_str() ? (1LL << 62) : n;
}

}  // namespace

std::string DicomSeries::name() const { return "DICOM series " + uid + " in '" + folder + "'"; }

DicomFolder find_dicom_series(const std::string& folder) {
  DicomFolder out;
  const auto files = dicom_files_under(folder, out);
  if (files.empty()) {
    throw UserError("DICOM folder '" + folder + "' holds no DICOM image (" +
                    std::to_string(out.other_files) + " other files, " +
                    std::to_string(out.dicomdirs) + " DICOMDIR)");
  }
  std::map<std::string, std::vector<Slice>> by_uid;
  for (const auto& path : files) {
    Slice x{path, read_dicom_header(path)};
    if (x.header.geometry.series_uid.empty()) {
      throw UserError("DICOM '" + path + "' has no SeriesInstanceUID (0020,000E), so it belongs "
                      "to no series");
    }
    by_uid[x.header.geometry.series_uid].push_back(std::move(x));
  }
  for (auto& [uid, slices] : by_uid) {
    DicomSeries s;
    s.uid = uid;
    s.folder = folder;
    s.number = slices.front().header.geometry.series_number;
    check_slices_alike(s, slices);
    order_slices(s, slices);
    out.series.push_back(std::move(s));
  }
  std::stable_sort(out.series.begin(), out.series.end(),
                   [](const DicomSeries& a, const DicomSeries& b) {
                     return series_order(a.number) < series_order(b.number);
                   });
  if (out.dicomdirs > 0 || out.other_files > 0) {
    log("io")->info("'{}': {} DICOM series in {} files; skipped {} DICOMDIR, ignored {} other "
                    "files", folder, out.series.size(), files.size(), out.dicomdirs, out.other_files);
  }
  return out;
}

Volume read_dicom_series(const DicomSeries& s) {
  const int64_t plane = s.width * s.height, depth = static_cast<int64_t>(s.files.size());
  Volume vol;
  vol.path = s.folder + " (series " + s.uid + ")";
  std::vector<float> values(static_cast<size_t>(plane * depth));
  for (int64_t k = 0; k < depth; ++k) {
    const auto image = read_dicom(s.files[k]);
    if (image.width != s.width || image.height != s.height || image.channels != 1 ||
        image.frames != 1) {
      throw UserError(s.name() + ": '" + s.files[k] + "' no longer holds one grey " +
                      std::to_string(s.width) + "x" + std::to_string(s.height) + " px slice");
    }
    float* out = values.data() + k * plane;
    for (int64_t p = 0; p < plane; ++p) {
      const double v = image.values[p];
      out[p] = std::isfinite(v) ? static_cast<float>(v) : 0.0f;
      vol.non_finite += std::isfinite(v) ? 0 : 1;
    }
  }
  const auto axes = nearest_axes(directions(s.orientation));
  if (!axes) throw UserError(s.name() + " has a degenerate ImageOrientationPatient");
  reorient_to_lps(values, {s.width, s.height, depth}, s.spacing, *axes, vol);
  vol.transform = "ImageOrientationPatient";
  return vol;
}

}  // namespace qfae::io
