// DICOM series as volumes: the DICOM files under a folder grouped by SeriesInstanceUID, each series
// checked to be one even stack of slices, then read into an io::Volume (LPS) like a NIfTI file.
// Needs GDCM through io/dicom.h; without it every call is a UserError saying so.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "qfae/io/volume.h"

namespace qfae::io {

// One series, its slices in order. Positions and directions are the header's (LPS, mm).
struct DicomSeries {
  std::string uid;                 // SeriesInstanceUID
  std::string number;              // SeriesNumber as written, "" when absent
  std::string folder;              // the folder it was found under, as given
  std::vector<std::string> files;  // one a slice, ordered along the slice normal (row x column)
  int64_t width = 0, height = 0;   // Columns, Rows
  std::array<double, 6> orientation{};  // ImageOrientationPatient of every slice
  // mm between columns, between rows (PixelSpacing), and between slices (from the positions).
  std::array<double, 3> spacing{};

  // "DICOM series <uid> in '<folder>'", how messages name it.
  std::string name() const;
};

// What a folder holds.
struct DicomFolder {
  std::vector<DicomSeries> series;  // by SeriesNumber (numerically), then UID
  int64_t other_files = 0;          // neither DICOM nor a DICOMDIR: ignored
  int64_t dicomdirs = 0;            // DICOMDIR index files: skipped
};

// Every DICOM file under `folder` (recursively: `.dcm` / `.dicom` names and extension-less files
// with the DICM marker, as io::is_dicom_file; files named DICOMDIR are skipped, other files
// counted and ignored), grouped by SeriesInstanceUID. Slices are ordered by their
// ImagePositionPatient projected on the normal of ImageOrientationPatient (never by file name or
// InstanceNumber); the slice spacing is the mean step between them. Reads headers only.
// UserError naming the series (UID and folder) and the offending files when a series has slices
// without position, orientation or pixel spacing, of mixed sizes, orientations or pixel spacings,
// at duplicate positions or with uneven steps (a gap: a slice missing), a multi-frame file, colour
// slices, or a single slice; naming the file when a `.dcm` is not DICOM or holds no pixels; and
// naming the folder when it is missing, unreadable or holds no DICOM image.
DicomFolder find_dicom_series(const std::string& folder);

// The series as a volume: modality values (rescale applied) as float, its file axes (columns,
// rows, slices along the normal) snapped to their nearest patient axes (io::reorient_to_lps; no
// resampling), spacing per LPS axis; transform "ImageOrientationPatient". UserError naming the
// file when one cannot be read or no longer matches the series' size.
Volume read_dicom_series(const DicomSeries& series);

}  // namespace qfae::io
