// DICOM images (scanners' and PACS files) through GDCM: the modality's values, not the stored
// integers. No LibTorch here; io/image.h turns them into the model's input.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qfae::io {

// Which series an image belongs to and where it lies in the patient (the Image Plane module),
// as the header writes them; what io/dicom_series.h stacks slices by.
struct DicomGeometry {
  std::string series_uid;     // SeriesInstanceUID
  std::string series_number;  // SeriesNumber as written ("" when absent)
  // ImagePositionPatient: the centre of the first pixel, mm in LPS.
  std::optional<std::array<double, 3>> position;
  // ImageOrientationPatient: the direction along a row (column index growing), then down a
  // column (row index growing), as LPS cosines.
  std::optional<std::array<double, 6>> orientation;
  // PixelSpacing: between rows (centre to centre down a column), then between columns, mm.
  std::optional<std::array<double, 2>> pixel_spacing;
};

// The first frame of a DICOM image, as the modality measured it.
struct DicomImage {
  int64_t width = 0, height = 0, channels = 1;  // channels: 1 (grey) or 3 (RGB)
  int64_t frames = 1;                           // frames in the file; `values` holds the first
  // (channels, height, width) row-major, float64: stored integers with their sign and bits,
  // times RescaleSlope plus RescaleIntercept (CT in Hounsfield units); RGB for colour files
  // (YBR_FULL and YBR_FULL_422 converted with the full-range ITU-R BT.601 matrix of the standard).
  std::vector<double> values;
  // MONOCHROME1: the smallest value is shown white. Windowing inverts it, so the image a person
  // sees (and the model's input) is always MONOCHROME2.
  bool inverted = false;
  int bits_stored = 8;  // colour files: their values are 0 .. 2^bits_stored - 1
  // The range the stored integers can take (bits stored, signed or not), through the rescale:
  // 0 .. 255 for an 8-bit file without one. Float pixel data: its bits' integer range.
  double stored_lo = 0, stored_hi = 255;
  std::optional<double> window_center, window_width;  // the file's first VOI window, if any
  std::string modality, photometric, transfer_syntax;
  // The identifiers users join results on, and the geometry that stacks a series; nothing else
  // of the header is kept.
  std::string patient_id, study_uid, sop_uid;
  DicomGeometry geometry;
};

// What stacking a series needs of one file, from its header alone (no pixel data decoded).
struct DicomHeader {
  int64_t width = 0, height = 0;  // Columns, Rows
  int64_t samples = 1;            // SamplesPerPixel: 1 grey, 3 colour
  int64_t frames = 1;             // NumberOfFrames (1 when absent)
  DicomGeometry geometry;
};

// True when this qfae was built with GDCM (libgdcm-dev).
bool dicom_supported();

// A `.dcm` / `.dicom` name, or a file with the "DICM" marker after its 128-byte preamble.
bool is_dicom_file(const std::string& path);

// The identifiers a results table names for a DICOM file (PatientID, StudyInstanceUID,
// SOPInstanceUID), from its header alone; empty strings where absent or unreadable (no error).
struct DicomIdentifiers {
  std::string patient_id, study_uid, sop_uid;
};
DicomIdentifiers read_dicom_identifiers(const std::string& path);

// The extra CSV columns of a results table whose rows may be DICOM files: "" when none of `paths`
// is DICOM, else ",patient_id,study_uid,sop_uid" in the header and one such suffix per path (empty
// fields for the non-DICOM ones). Nothing else of a header is ever written.
struct DicomColumns {
  std::string header;
  std::vector<std::string> rows;
  // How many of `paths` are DICOM files, and their distinct PatientIDs and StudyInstanceUIDs
  // (empty ones not counted): what metrics.json says of them.
  int64_t images = 0, patients = 0, studies = 0;
};
DicomColumns dicom_columns(const std::vector<std::string>& paths);

// Reads the first frame of `path`. UserError naming the file when it is not DICOM, holds no
// pixel data (RT plans, structured reports, waveforms, DICOMDIRs), is truncated, uses a
// compression GDCM cannot decode, or has a layout qfae does not take (palette colour, more than 3
// samples per pixel, 1-pixel images), and when qfae was built without GDCM.
DicomImage read_dicom(const std::string& path);

// The header of `path`, its pixel data left unread. UserError naming the file as read_dicom's
// when it is not DICOM, is a DICOMDIR, holds no pixel data, or qfae was built without GDCM.
DicomHeader read_dicom_header(const std::string& path);

}  // namespace qfae::io
