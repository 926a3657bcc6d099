// Image decoding and PNG encoding with OpenCV; every failure becomes a UserError naming the file.
#include "qfae/io/image.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "png_mat.h"
#include "qfae/io/dicom.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::io {
namespace {

std::string reason_of(const std::error_code& ec) {
  return ec == std::errc::permission_denied ? "permission denied" : ec.message();
}

// UserError naming `path` unless it is (a link to) a regular file: broken links and folders that
// may not be entered are told apart from files that are not there.
void check_regular_file(const std::string& path) {
  std::error_code ec, link_ec;
  const auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::regular) return;
  if (fs::symlink_status(path, link_ec).type() == fs::file_type::symlink) {
    throw UserError("image '" + path + "' is a broken symbolic link (to '" +
                    fs::read_symlink(path, link_ec).string() +
                    "': " + (ec ? reason_of(ec) : std::string("not a file")) + ")");
  }
  if (ec && st.type() != fs::file_type::not_found) {
    throw UserError("image '" + path + "': " + reason_of(ec));
  }
  throw UserError("image '" + path + "' does not exist or is not a file");
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UserError("image '" + path + "' cannot be opened for reading: " +
                    reason_of(std::error_code(errno, std::generic_category())));
  }
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (bytes.empty()) throw UserError("image '" + path + "' is empty (0 bytes)");
  return bytes;
}

bool starts_with(const std::vector<unsigned char>& b, std::initializer_list<unsigned char> magic) {
  if (b.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), b.begin());
}

// Decoders fill the missing tail of a truncated PNG or JPEG with grey instead of failing, so check
// the end markers ourselves: PNG ends with an IEND chunk, JPEG with the EOI marker FF D9 (markers
// cannot occur inside entropy-coded data, so one near the end is the real end of the image).
void check_complete(const std::vector<unsigned char>& b, const std::string& path) {
  if (starts_with(b, {0x89, 'P', 'N', 'G'})) {
    const char kIend[] = "IEND";
    const size_t from = b.size() > 64 ? b.size() - 64 : 0;
    if (std::search(b.begin() + from, b.end(), kIend, kIend + 4) == b.end()) {
      throw UserError("image '" + path + "' is a truncated PNG (no IEND chunk at its end)");
    }
  } else if (starts_with(b, {0xFF, 0xD8})) {
    const size_t from = b.size() > 4096 ? b.size() - 4096 : 0;
    bool found = false;
    for (size_t i = from; i + 1 < b.size() && !found; ++i) found = b[i] == 0xFF && b[i + 1] == 0xD9;
    if (!found)
      throw UserError("image '" + path + "' is a truncated JPEG (no end-of-image marker)");
  }
}

uint32_t read_u32(const unsigned char* p, bool big_endian) {
  return big_endian ? (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]
                    : (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}
uint16_t read_u16(const unsigned char* p, bool big_endian) {
  return static_cast<uint16_t>(big_endian ? (p[0] << 8) | p[1] : (p[1] << 8) | p[0]);
}

// The Orientation tag (0x0112) of the TIFF structure at b[from, from + size): EXIF data, or a
// TIFF file itself. 1 (as stored) when it has none or it cannot be read.
int tiff_orientation(const std::vector<unsigned char>& b, size_t from, size_t size) {
  if (size < 8 || from + size > b.size()) return 1;
  const unsigned char* t = b.data() + from;
  const bool big = t[0] == 'M' && t[1] == 'M';
  if (!big && !(t[0] == 'I' && t[1] == 'I')) return 1;
  if (read_u16(t + 2, big) != 42) return 1;
  const uint32_t ifd = read_u32(t + 4, big);
  if (ifd > size - 2) return 1;
  const uint16_t entries = read_u16(t + ifd, big);
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t at = ifd + 2 + 12ull * i;
    if (at + 12 > size) return 1;
    if (read_u16(t + at, big) != 0x0112) continue;
    if (read_u16(t + at + 2, big) != 3) return 1;  // SHORT, the value in the entry's first bytes
    const int value = read_u16(t + at + 8, big);
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

// The EXIF orientation a viewer applies (1-8; 1 = as stored): a JPEG's APP1 "Exif" segment, a
// PNG's eXIf chunk, or a TIFF's first directory.
int exif_orientation(const std::vector<unsigned char>& b) {
  if (starts_with(b, {0xFF, 0xD8})) {
    for (size_t i = 2; i + 4 <= b.size() && b[i] == 0xFF;) {
      const unsigned char marker = b[i + 1];
      if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
        i += 2;
        continue;
      }
      if (marker == 0xDA || marker == 0xD9) break;  // image data: no more metadata
      const size_t length = (size_t{b[i + 2]} << 8) | b[i + 3];
      if (length < 2 || i + 2 + length > b.size()) break;
      static const unsigned char kExif[] = {'E', 'x', 'i', 'f', 0, 0};
      if (marker == 0xE1 && length >= 8 && std::equal(kExif, kExif + 6, b.begin() + i + 4)) {
        return tiff_orientation(b, i + 10, length - 8);
      }
      i += 2 + length;
    }
    return 1;
  }
  if (starts_with(b, {0x89, 'P', 'N', 'G'})) {
    for (size_t i = 8; i + 12 <= b.size();) {
      const size_t length = read_u32(b.data() + i, /*big_endian=*/true);
      if (length > b.size() - i - 12) break;
      const std::string type(b.begin() + i + 4, b.begin() + i + 8);
      if (type == "eXIf") return tiff_orientation(b, i + 8, length);
      if (type == "IEND") break;
      i += 12 + length;
    }
    return 1;
  }
  if (starts_with(b, {'I', 'I', 42, 0}) || starts_with(b, {'M', 'M', 0, 42})) {
    return tiff_orientation(b, 0, b.size());
  }
  return 1;
}

// Turns `mat` as stored into `mat` as shown, for EXIF orientation 1-8 (TIFF 6.0 / EXIF 2.3: 2
// mirrored, 3 rotated 180°, 4 flipped, 5 transposed, 6 rotated 90° clockwise, 7 transversed, 8
// rotated 90° counter-clockwise).
void apply_orientation(cv::Mat& mat, int orientation) {
  if (orientation >= 5) cv::transpose(mat, mat);
  switch (orientation) {
    case 2: case 6: cv::flip(mat, mat, 1); break;
    case 3: case 7: cv::flip(mat, mat, -1); break;
    case 4: case 8: cv::flip(mat, mat, 0); break;
    default: break;
  }
}

// Decoded as a viewer shows it: OpenCV's own orientation handling is off (it depends on the flags:
// IMREAD_UNCHANGED never applies it), and the file's EXIF orientation is applied here, the same
// for images and masks.
cv::Mat decode(const std::string& path, int flags) {
  const auto bytes = read_bytes(path);
  check_complete(bytes, path);
  cv::Mat mat;
  try {
    mat = cv::imdecode(bytes, flags == cv::IMREAD_UNCHANGED
                                  ? flags
                                  : flags | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw UserError("image '" + path + "' cannot be decoded: " + e.what());
  }
  if (mat.empty()) {
    throw UserError("image '" + path +
                    "' cannot be decoded (truncated, corrupt, or not a PNG/JPEG/BMP/TIFF image)");
  }
  apply_orientation(mat, exif_orientation(bytes));
  return mat;
}

// 8-bit -> /255, 16-bit -> /65535, float kept; (H, W, C) float32 Mat.
cv::Mat to_unit_float(const cv::Mat& mat, const std::string& path) {
  double scale = 1.0;
  switch (mat.depth()) {
    case CV_8U:
      scale = 1.0 / 255.0;
      break;
    case CV_16U:
      scale = 1.0 / 65535.0;
      break;
    case CV_32F:
    case CV_64F:
      break;
    default:
      throw UserError("image '" + path +
                      "' has an unsupported pixel type (expected 8- or 16-bit unsigned, or float)");
  }
  cv::Mat out;
  mat.convertTo(out, CV_32F, scale);
  return out;
}

torch::Tensor to_tensor(const cv::Mat& hwc) {  // float32 (H, W, C) -> (C, H, W)
  const cv::Mat m = hwc.isContinuous() ? hwc : hwc.clone();
  auto t = torch::from_blob(const_cast<float*>(m.ptr<float>()), {m.rows, m.cols, m.channels()},
                            torch::kFloat32);
  return t.permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);  // own memory, not the Mat's
}

}  // namespace

bool is_image_file(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" ||
         ext == ".tiff" || ext == ".dcm" || ext == ".dicom";
}

torch::Tensor read_image(const std::string& path) {
  cv::Mat mat = decode(path, cv::IMREAD_UNCHANGED);
  if (mat.channels() == 3) {
    cv::cvtColor(mat, mat, cv::COLOR_BGR2RGB);
  } else if (mat.channels() == 4) {
    cv::cvtColor(mat, mat, cv::COLOR_BGRA2RGB);
  } else if (mat.channels() == 2) {  // grey + alpha
    cv::extractChannel(mat, mat, 0);
  } else if (mat.channels() != 1) {
    throw UserError("image '" + path + "' has " + std::to_string(mat.channels()) +
                    " channels; expected 1 (grey), 3 (colour) or 4 (colour + alpha)");
  }
  return to_tensor(to_unit_float(mat, path));
}

torch::Tensor read_dicom_image(const std::string& path, const DicomWindow& window) {
  const auto d = read_dicom(path);
  if (d.frames > 1) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      log("data")->warn("DICOM '{}' holds {} frames: its first is the image (said once for all "
                        "multi-frame files)", path, d.frames);
    }
  }
  const auto n = static_cast<int64_t>(d.values.size());
  auto values = torch::from_blob(const_cast<double*>(d.values.data()), {n}, torch::kFloat64)
                    .clone()
                    .view({d.channels, d.height, d.width});
  if (d.channels == 3) {
    const double top = std::ldexp(1.0, d.bits_stored) - 1;
    return (values / top).clamp(0, 1).to(torch::kFloat32);
  }
  torch::Tensor unit;
  if (window.mode == "file" && d.window_center && d.window_width) {
    // PS3.3 C.11.2.1.2.1, the linear VOI function, onto [0, 1].
    const double c = *d.window_center, w = *d.window_width;
    unit = w <= 1 ? (values > c - 0.5).to(torch::kFloat64)
                  : (((values - (c - 0.5)) / (w - 1)) + 0.5).clamp(0, 1);
  } else {
    double lo = window.lo, hi = window.hi;
    if (window.mode == "stored") {
      lo = d.stored_lo;
      hi = d.stored_hi;
    } else if (window.mode != "fixed") {
      auto sorted = std::get<0>(values.flatten().sort());
      const auto at = [&](double q) {
        const auto i = static_cast<int64_t>(std::llround(q * static_cast<double>(n - 1)));
        return sorted[i].item<double>();
      };
      lo = at(0.005);
      hi = at(0.995);
    }
    unit = hi > lo ? ((values - lo) / (hi - lo)).clamp(0, 1) : (values > lo).to(torch::kFloat64);
  }
  if (d.inverted) unit = 1 - unit;
  return unit.to(torch::kFloat32).contiguous();
}

torch::Tensor read_any_image(const std::string& path, const DicomWindow& window) {
  return is_dicom_file(path) ? read_dicom_image(path, window) : read_image(path);
}

torch::Tensor read_mask(const std::string& path, double threshold) {
  cv::Mat mat = decode(path, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
  if (mat.channels() != 1) cv::extractChannel(mat, mat, 0);
  double lo = 0, hi = 0;
  cv::minMaxLoc(mat, &lo, &hi);
  if ((mat.depth() == CV_8U || mat.depth() == CV_16U) && hi >= 1 && hi <= kMaxMaskLabel) {
    // Labels (0/1, or a few classes), not 0/255 intensities: scaled, they would all fall below
    // any threshold and the lesion would vanish.
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      log("data")->warn("mask '{}' holds label values up to {} (not 0/255): every non-zero pixel "
                        "is read as anomalous, in this and every such mask (said once)",
                        path, static_cast<int>(hi));
    }
    cv::Mat raw;
    mat.convertTo(raw, CV_32F);
    return (to_tensor(raw) > 0.5).to(torch::kFloat32);
  }
  const auto grey = to_tensor(to_unit_float(mat, path));  // (1, H, W)
  return (grey > threshold).to(torch::kFloat32);
}

void write_png_mat(const std::string& path, const cv::Mat& image) {
  std::vector<unsigned char> buffer;
  if (!cv::imencode(".png", image, buffer)) throw UserError("cannot encode PNG '" + path + "'");
  const auto parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) throw UserError("cannot create folder '" + parent.string() + "': " + reason_of(ec));
  write_file_atomic(path, std::string(buffer.begin(), buffer.end()));
}

void write_png(const std::string& path, const torch::Tensor& image, int bit_depth) {
  TORCH_CHECK(bit_depth == 8 || bit_depth == 16, "write_png: bit_depth must be 8 or 16, got ",
              bit_depth);
  auto chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  TORCH_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3),
              "write_png: expected (H, W), (1, H, W) or (3, H, W), got ", image.sizes());
  const double levels = bit_depth == 8 ? 255.0 : 65535.0;
  auto hwc = (chw.detach().to(torch::kCPU, torch::kFloat64).clamp(0, 1) * levels)
                 .round()
                 .permute({1, 2, 0})
                 .to(torch::kInt32)
                 .contiguous();
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1));
  const int c = static_cast<int>(hwc.size(2));
  cv::Mat levels_mat(h, w, CV_32SC(c), hwc.data_ptr<int32_t>());
  cv::Mat out;
  levels_mat.convertTo(out, bit_depth == 8 ? CV_8U : CV_16U);
  if (c == 3) cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
  write_png_mat(path, out);
}

}  // namespace qfae::io
