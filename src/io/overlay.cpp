// Overlay figures with OpenCV: jet colour map, alpha blend, mask contours, a caption strip.
#include "qfae/io/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "png_mat.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::io {
namespace {

// (H, W) float tensor -> CV_32F Mat (copied).
cv::Mat to_mat(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return cv::Mat(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_32F,
                 const_cast<float*>(c.data_ptr<float>()))
      .clone();
}

// (C, H, W) or (H, W) in [0, 1] -> 8-bit BGR.
cv::Mat to_bgr(const torch::Tensor& image) {
  auto chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  TORCH_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3),
              "write_overlay: image must be (H, W), (1, H, W) or (3, H, W), got ", image.sizes());
  if (chw.size(0) == 1) chw = chw.expand({3, chw.size(1), chw.size(2)});
  const auto hwc = (chw.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255)
                       .round()
                       .to(torch::kUInt8)
                       .permute({1, 2, 0})
                       .contiguous();
  cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3,
              hwc.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

}  // namespace

void write_overlay(const std::string& path, const torch::Tensor& image, const torch::Tensor& map,
                   const torch::Tensor& mask, const OverlayOptions& options) {
  TORCH_CHECK(map.dim() == 2, "write_overlay: map must be (H, W), got ", map.sizes());
  cv::Mat input = to_bgr(image);
  const int h = static_cast<int>(map.size(0)), w = static_cast<int>(map.size(1));
  if (input.rows != h || input.cols != w) cv::resize(input, input, {w, h}, 0, 0, cv::INTER_AREA);

  // Map -> 8-bit levels over [vmin, vmax] -> jet.
  const double span = options.vmax > options.vmin ? options.vmax - options.vmin : 1.0;
  cv::Mat levels;
  to_mat(map).convertTo(levels, CV_8U, 255.0 / span, -options.vmin * 255.0 / span);
  cv::Mat heat;
  cv::applyColorMap(levels, heat, cv::COLORMAP_JET);

  // Enlarge small images so a person can see them (nearest for the map keeps its pixels honest).
  const int scale = std::max(1, (options.min_panel + std::max(h, w) - 1) / std::max(h, w));
  const cv::Size big(w * scale, h * scale);
  cv::resize(input, input, big, 0, 0, cv::INTER_LINEAR);
  cv::resize(heat, heat, big, 0, 0, cv::INTER_NEAREST);
  cv::Mat blend;
  cv::addWeighted(heat, options.alpha, input, 1.0 - options.alpha, 0.0, blend);

  if (mask.defined()) {
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == h && mask.size(1) == w,
                "write_overlay: mask must match the map (", h, ", ", w, "), got ", mask.sizes());
    cv::Mat m;
    to_mat(mask > 0.5).convertTo(m, CV_8U, 255.0);
    cv::resize(m, m, big, 0, 0, cv::INTER_NEAREST);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    const int thickness = std::max(1, big.width / 200);
    cv::drawContours(blend, contours, -1, cv::Scalar(0, 255, 0), thickness);
    cv::drawContours(input, contours, -1, cv::Scalar(0, 255, 0), thickness);
  }

  const int gap = 4;
  const int caption_h = options.caption.empty() ? 0 : 24;
  cv::Mat canvas(big.height + caption_h, 3 * big.width + 2 * gap, CV_8UC3, cv::Scalar(0, 0, 0));
  input.copyTo(canvas(cv::Rect(0, 0, big.width, big.height)));
  heat.copyTo(canvas(cv::Rect(big.width + gap, 0, big.width, big.height)));
  blend.copyTo(canvas(cv::Rect(2 * (big.width + gap), 0, big.width, big.height)));
  if (caption_h) {
    cv::putText(canvas, options.caption, {6, big.height + 17}, cv::FONT_HERSHEY_SIMPLEX, 0.5,
                cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }
  write_png_mat(path, canvas);
}

}  // namespace qfae::io
