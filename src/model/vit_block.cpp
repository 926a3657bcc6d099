// timm's pre-norm ViT block: attention and MLP, each with a residual connection.
#include "qfae/model/vit_block.h"

#include <cmath>

#include "qfae/util/torch_compat.h"

namespace qfae::model {

ViTAttentionImpl::ViTAttentionImpl(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {
  TORCH_CHECK(heads > 0 && dim % heads == 0, "ViTAttention: width ", dim,
              " must be a positive multiple of the number of heads ", heads);
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == dim_, "ViTAttention: expected (B, N, ", dim_, "), got ",
              x.sizes());
  const auto b = x.size(0), n = x.size(1), d = dim_ / heads_;
  auto qkv = qkv_->forward(x).reshape({b, n, 3, heads_, d}).permute({2, 0, 3, 1, 4});
  auto out = compat::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], std::nullopt,
                                                  /*is_causal=*/false, 1.0 / std::sqrt(double(d)));
  return proj_->forward(out.transpose(1, 2).reshape({b, n, dim_}));  // (B, N, D)
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2_->forward(torch::gelu(fc1_->forward(x)));
}

ViTBlockImpl::ViTBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double layer_norm_eps) {
  auto ln = torch::nn::LayerNormOptions({dim}).eps(layer_norm_eps);
  norm1_ = register_module("norm1", torch::nn::LayerNorm(ln));
  attn_ = register_module("attn", ViTAttention(dim, heads));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp_ = register_module("mlp", Mlp(dim, static_cast<int64_t>(mlp_ratio * double(dim))));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn_->forward(norm1_->forward(x));
  return h + mlp_->forward(norm2_->forward(h));
}

}  // namespace qfae::model
