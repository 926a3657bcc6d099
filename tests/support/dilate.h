// Test support: binary dilation of a mask by a square window (max pooling).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace qfae::test {

// mask: (H, W) 0/1; returns (H, W) with every pixel within `radius` (Chebyshev) of a 1 set.
inline torch::Tensor dilate(const torch::Tensor& mask, int64_t radius) {
  namespace F = torch::nn::functional;
  return F::max_pool2d(mask.unsqueeze(0).unsqueeze(0),
                       F::MaxPool2dFuncOptions(2 * radius + 1).stride(1).padding(radius))
      .squeeze();
}

}  // namespace qfae::test
