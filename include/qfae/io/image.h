// Image files <-> tensors. Decoding and encoding use OpenCV inside src/io/image.cpp only; this
// header exposes torch tensors and std types, so the rest of the code never includes OpenCV.
#pragma once
#include <torch/types.h>

#include <string>

namespace qfae::io {

// True when the file name ends in .png, .jpg, .jpeg, .bmp, .tif, .tiff, .dcm or .dicom (any case).
bool is_image_file(const std::string& path);

// Decodes PNG (8/16-bit), JPEG, BMP or TIFF to float32 (C, H, W) in [0, 1], contiguous, on CPU.
// C = 1 for grey files and 3 (RGB order) for colour ones; an alpha channel is dropped. 8-bit values
// are divided by 255, 16-bit by 65535; float TIFFs are kept as stored. Pixels are as a viewer shows
// them: a JPEG's, PNG's or TIFF's EXIF orientation (camera photos) is applied, to masks too. Throws
// UserError naming the
// file when it is missing, empty (zero bytes), truncated or not a decodable image.
torch::Tensor read_image(const std::string& path);

// Decodes a mask as grey (colour masks: OpenCV's BGR->grey weights), scales it to [0, 1] like
// read_image, and returns float32 (1, H, W) holding 1 where the value is > threshold, else 0.
// An 8- or 16-bit mask whose largest value is 1 to kMaxMaskLabel holds labels (0/1 masks, or
// class numbers such as BraTS's 1, 2, 4), not intensities: there every non-zero pixel is 1 (said
// once per process in a warning).
// How a DICOM file's values become [0, 1] (data.dicom_window / data.dicom_range).
struct DicomWindow {
  std::string mode = "file";  // file | percentiles | stored | fixed
  double lo = 0, hi = 0;      // fixed: the values mapped to 0 and 1
};

// A DICOM file (io/dicom.h) as float32 (C, H, W) in [0, 1], C = 1 or 3: grey values through the
// window (mode file: the file's VOI window with the standard's linear function, PS3.3 C.11.2.1.2,
// or the percentiles when it has none; percentiles: the 0.5th to 99.5th percentile of the image;
// stored: the range the stored integers can take, 0 to 255 for 8-bit files, so an 8-bit file
// reads as its PNG export would; fixed: lo to hi), MONOCHROME1 inverted; colour values divided by 2^bits_stored - 1. Never
// rounded to 8 bits. A multi-frame file gives its first frame (a warning says so, once per
// process). UserError naming the file as read_dicom.
torch::Tensor read_dicom_image(const std::string& path, const DicomWindow& window);

// read_dicom_image for DICOM files (is_dicom_file), read_image for the others.
torch::Tensor read_any_image(const std::string& path, const DicomWindow& window);

inline constexpr int kMaxMaskLabel = 8;
torch::Tensor read_mask(const std::string& path, double threshold);

// Writes a (C, H, W) or (H, W) float tensor with values in [0, 1] (clamped) as an 8- or 16-bit PNG
// (C = 1 grey, C = 3 RGB), rounding to the nearest level. Creates missing parent folders.
// UserError naming the file when it cannot be written.
void write_png(const std::string& path, const torch::Tensor& image, int bit_depth = 8);

}  // namespace qfae::io
