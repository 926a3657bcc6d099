// The few lines that differ between LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (CUDA builds).
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <optional>

namespace qfae::compat {

inline constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

// softmax(q k^T * scale + mask) v for (B, H, Lq, d) inputs; the fused kernel where LibTorch has it.
// attn_mask: additive float mask or boolean (true = keep), broadcastable to (B, H, Lq, Lk).
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const std::optional<torch::Tensor>& attn_mask,
                                                  bool is_causal, double scale) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, is_causal, scale);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, Lq, Lk)
  if (is_causal) {
    const auto lq = q.size(-2), lk = k.size(-2);
    auto keep = torch::ones({lq, lk}, q.options().dtype(torch::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (attn_mask) {
    if (attn_mask->scalar_type() == torch::kBool) {
      scores = scores.masked_fill(attn_mask->logical_not(), -std::numeric_limits<float>::infinity());
    } else {
      scores = scores + *attn_mask;
    }
  }
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

}  // namespace qfae::compat
