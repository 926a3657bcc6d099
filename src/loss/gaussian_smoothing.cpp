// Separable Gaussian filtering of anomaly maps with scipy's "reflect" borders.
#include "qfae/loss/gaussian_smoothing.h"

#include <cmath>
#include <string>
#include <vector>

#include "qfae/util/error.h"

namespace qfae::loss {
namespace {

// Index of the source sample for position i in [-r, n + r) under "reflect": the signal is
// mirrored about its edges, edge sample repeated (period 2n).
int64_t reflect_index(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

// Filters along the last dimension of x (..., n) with kernel k (2r + 1).
torch::Tensor filter_last_dim(const torch::Tensor& x, const torch::Tensor& k) {
  const int64_t n = x.size(-1);
  const int64_t r = (k.size(0) - 1) / 2;
  std::vector<int64_t> idx(static_cast<size_t>(n + 2 * r));
  for (int64_t i = -r; i < n + r; ++i) idx[static_cast<size_t>(i + r)] = reflect_index(i, n);
  const auto index = torch::tensor(idx, torch::TensorOptions().dtype(torch::kLong)).to(x.device());
  const auto padded = x.index_select(-1, index).reshape({-1, 1, n + 2 * r});  // (M, 1, n + 2r)
  const auto out = torch::conv1d(padded, k.to(x.device(), x.scalar_type()).view({1, 1, -1}));
  return out.reshape(x.sizes());  // (..., n)
}

}  // namespace

torch::Tensor gaussian_kernel_1d(double sigma, double truncate) {
  const auto radius = static_cast<int64_t>(truncate * sigma + 0.5);
  auto x = torch::arange(-radius, radius + 1, torch::kDouble);
  auto k = torch::exp(-0.5 * x * x / (sigma * sigma));
  return k / k.sum();
}

torch::Tensor gaussian_smooth(const torch::Tensor& maps, double sigma, double truncate) {
  if (!std::isfinite(sigma) || sigma < 0) {
    throw UserError("eval.smoothing_sigma: " + std::to_string(sigma) +
                    " is not a valid Gaussian sigma (0 = off, or a positive number of pixels)");
  }
  TORCH_CHECK(maps.dim() == 4 && maps.size(1) == 1, "gaussian_smooth: expected (N, 1, H, W), got ",
              maps.sizes());
  if (sigma == 0) return maps;
  const auto k = gaussian_kernel_1d(sigma, truncate);
  const auto rows = filter_last_dim(maps.contiguous(), k);                      // along W
  const auto cols = filter_last_dim(rows.transpose(2, 3).contiguous(), k);      // along H
  return cols.transpose(2, 3).contiguous();
}

}  // namespace qfae::loss
