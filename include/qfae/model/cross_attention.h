// Cross-attention of the queries onto the encoder tokens, with a learned null key/value prepended
// to every head, under the reference's parameter names (norm, to_q, to_kv, null_kv, to_out.0/1).
#pragma once
#include <torch/torch.h>

// Legend: B batch, Q queries, L context tokens, D width, h heads, d head width (64 by default).
namespace qfae::model {

struct CrossAttentionImpl : torch::nn::Module {
  // The queries and the context share the width `dim`; inner width = heads * dim_head.
  CrossAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head, double layer_norm_eps = 1e-5);

  // x (B, Q, D) queries, context (B, L, D) -> (B, Q, D). Only x is normalised.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  int64_t dim_, heads_, dim_head_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear to_q_{nullptr};        // D -> h*d, no bias
  torch::nn::Linear to_kv_{nullptr};       // D -> 2*h*d, no bias, split K | V
  torch::Tensor null_kv_;                  // (2, d): null key, null value
  torch::nn::Sequential to_out_{nullptr};  // Linear(h*d -> D, no bias), LayerNorm(D)
};
TORCH_MODULE(CrossAttention);

}  // namespace qfae::model
