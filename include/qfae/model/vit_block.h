// timm's pre-norm transformer block (norm1, attn.qkv/proj, norm2, mlp.fc1/fc2), the decoder's
// building block, with timm's parameter names.
#pragma once
#include <torch/torch.h>

// Legend: B batch, N tokens, D width, H heads, d = D / H.
namespace qfae::model {

// timm's Attention: fused qkv Linear (bias) -> softmax(q k^T / sqrt(d)) v -> proj.
struct ViTAttentionImpl : torch::nn::Module {
  ViTAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // (B, N, D) -> (B, N, D)

  int64_t dim_, heads_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(ViTAttention);

// timm's Mlp: fc1 -> GELU (exact) -> fc2.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Mlp);

// x + attn(norm1(x)), then x + mlp(norm2(x)).
struct ViTBlockImpl : torch::nn::Module {
  ViTBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double layer_norm_eps);
  torch::Tensor forward(const torch::Tensor& x);  // (B, N, D) -> (B, N, D)

  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  ViTAttention attn_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(ViTBlock);

}  // namespace qfae::model
