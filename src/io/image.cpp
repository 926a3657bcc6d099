// Image decoding and PNG encoding with OpenCV; every failure becomes a UserError naming the file.
#include "qfae/io/image.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "png_mat.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

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

cv::Mat decode(const std::string& path, int flags) {
  const auto bytes = read_bytes(path);
  check_complete(bytes, path);
  cv::Mat mat;
  try {
    mat = cv::imdecode(bytes, flags);
  } catch (const cv::Exception& e) {
    throw UserError("image '" + path + "' cannot be decoded: " + e.what());
  }
  if (mat.empty()) {
    throw UserError("image '" + path +
                    "' cannot be decoded (truncated, corrupt, or not a PNG/JPEG/BMP/TIFF image)");
  }
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
         ext == ".tiff";
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

torch::Tensor read_mask(const std::string& path, double threshold) {
  cv::Mat mat = decode(path, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
  if (mat.channels() != 1) cv::extractChannel(mat, mat, 0);
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
