// Separable Gaussian filtering of anomaly maps with scipy's "reflect" borders.
#include "qfae/anomaly/gaussian_smoothing.h"

#include <cmath>
#include <string>
#include <vector>

#include "qfae/util/error.h"

namespace qfae::anomaly {
namespace {

// Indices of the source samples for positions [-r, n + r) under "reflect": the signal is mirrored
// about its edges, edge sample repeated (period 2n). Made on the maps' device: no host copy.
torch::Tensor reflect_indices(int64_t n, int64_t r, torch::Device device) {
  const int64_t period = 2 * n;
  const auto m = torch::remainder(
      torch::arange(-r, n + r, torch::TensorOptions().dtype(torch::kLong).device(device)), period);
  return torch::where(m < n, m, period - 1 - m);  // (n + 2r)
}

// Filters along the last dimension of x (..., n) with kernel k (2r + 1) on x's device.
torch::Tensor filter_last_dim(const torch::Tensor& x, const torch::Tensor& k) {
  const int64_t n = x.size(-1);
  const int64_t r = (k.size(0) - 1) / 2;
  const auto padded =
      x.index_select(-1, reflect_indices(n, r, x.device())).reshape({-1, 1, n + 2 * r});
  const auto out = torch::conv1d(padded, k.to(x.scalar_type()).view({1, 1, -1}));  // (M, 1, n)
  return out.reshape(x.sizes());  // (..., n)
}

}  // namespace

torch::Tensor gaussian_kernel_1d(double sigma, double truncate, torch::Device device) {
  const auto radius = static_cast<int64_t>(truncate * sigma + 0.5);
  auto x = torch::arange(-radius, radius + 1, torch::TensorOptions(torch::kDouble).device(device));
  auto k = torch::exp(-0.5 * x * x / (sigma * sigma));
  return k / k.sum();
}

torch::Tensor gaussian_smooth(const torch::Tensor& maps, double sigma, double truncate) {
  if (!std::isfinite(sigma) || sigma < 0) {
    throw UserError("Gaussian sigma " + std::to_string(sigma) +
                    " is not valid (0 = off, or a positive number of pixels)");
  }
  TORCH_CHECK(maps.dim() == 4 && maps.size(1) == 1, "gaussian_smooth: expected (N, 1, H, W), got ",
              maps.sizes());
  if (sigma == 0) return maps;
  const auto k = gaussian_kernel_1d(sigma, truncate, maps.device());
  const auto rows = filter_last_dim(maps.contiguous(), k);                      // along W
  const auto cols = filter_last_dim(rows.transpose(2, 3).contiguous(), k);      // along H
  return cols.transpose(2, 3).contiguous();
}

}  // namespace qfae::anomaly
