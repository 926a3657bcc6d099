// 8-connected component labelling by flood fill with an explicit stack (no recursion).
#include "qfae/metrics/connected_components.h"

namespace qfae::metrics {

Components label_components(const std::vector<std::uint8_t>& mask, std::int64_t height,
                            std::int64_t width) {
  TORCH_CHECK(static_cast<std::int64_t>(mask.size()) == height * width,
              "label_components: mask has ", mask.size(), " pixels, expected ", height, "x", width);
  Components out;
  out.labels.assign(mask.size(), 0);
  std::vector<std::int64_t> stack;
  for (std::int64_t start = 0; start < height * width; ++start) {
    if (!mask[start] || out.labels[start] != 0) continue;
    const auto label = static_cast<std::int32_t>(++out.count);
    std::int64_t area = 0;
    out.labels[start] = label;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::int64_t p = stack.back();
      stack.pop_back();
      ++area;
      const std::int64_t y = p / width;
      const std::int64_t x = p % width;
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        for (std::int64_t dx = -1; dx <= 1; ++dx) {
          const std::int64_t ny = y + dy;
          const std::int64_t nx = x + dx;
          if (ny < 0 || ny >= height || nx < 0 || nx >= width) continue;
          const std::int64_t q = ny * width + nx;
          if (mask[q] && out.labels[q] == 0) {
            out.labels[q] = label;
            stack.push_back(q);
          }
        }
      }
    }
    out.areas.push_back(area);
  }
  return out;
}

Components label_components(const torch::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2, "label_components: expected a (H, W) mask, got sizes ",
              mask.sizes());
  const auto binary = (mask.to(torch::kCPU).to(torch::kFloat) > 0.5).to(torch::kUInt8).contiguous();
  const auto* data = binary.data_ptr<std::uint8_t>();
  std::vector<std::uint8_t> flat(data, data + binary.numel());
  return label_components(flat, mask.size(0), mask.size(1));
}

}  // namespace qfae::metrics
