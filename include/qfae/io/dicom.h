// DICOM images (scanners' and PACS files) through GDCM: the modality's values, not the stored
// integers. No LibTorch here; io/image.h turns them into the model's input.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qfae::io {

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
  std::optional<double> window_center, window_width;  // the file's first VOI window, if any
  std::string modality, photometric, transfer_syntax;
  // The identifiers users join results on; nothing else of the header is kept.
  std::string patient_id, study_uid, sop_uid;
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
};
DicomColumns dicom_columns(const std::vector<std::string>& paths);

// Reads the first frame of `path`. UserError naming the file when it is not DICOM, holds no
// pixel data (RT plans, structured reports, waveforms, DICOMDIRs), is truncated, uses a
// compression GDCM cannot decode, or has a layout qfae does not take (palette colour, more than 3
// samples per pixel, 1-pixel images), and when qfae was built without GDCM.
DicomImage read_dicom(const std::string& path);

}  // namespace qfae::io
