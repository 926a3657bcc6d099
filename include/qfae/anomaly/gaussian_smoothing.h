// Optional Gaussian smoothing of anomaly maps, matching scipy.ndimage.gaussian_filter (the
// smoothing the field's evaluation code applies): truncate 4.0, mode "reflect".
#pragma once
#include <torch/torch.h>

namespace qfae::anomaly {

// The normalised 1-D kernel: radius int(truncate * sigma + 0.5), weights exp(-x^2 / (2 sigma^2)).
torch::Tensor gaussian_kernel_1d(double sigma, double truncate = 4.0,
                                 torch::Device device = torch::kCPU);

// maps (N, 1, H, W) -> the same shape, each map filtered separably (rows, then columns) with
// gaussian_kernel_1d(sigma). Borders use scipy's "reflect" (d c b a | a b c d), for any radius.
// sigma == 0 returns the input unchanged; sigma < 0 or non-finite is a qfae::UserError.
torch::Tensor gaussian_smooth(const torch::Tensor& maps, double sigma, double truncate = 4.0);

}  // namespace qfae::anomaly
