// Inside src/io only: writes an OpenCV image (BGR or grey, 8 or 16 bit) as a PNG file, creating
// parent folders, atomically (written beside the name, then renamed). UserError naming the file.
#pragma once
#include <opencv2/core.hpp>

#include <string>

namespace qfae::io {

void write_png_mat(const std::string& path, const cv::Mat& image);

}  // namespace qfae::io
