// Multi-query self-attention over the Q-Former's queries: H query heads and ONE key/value head
// shared by all of them, under the reference's parameter names (`Wqkv`, `out_proj`).
#pragma once
#include <torch/torch.h>

// Legend: B batch, N tokens, D width, H query heads, d = D / H head width.
namespace qfae::model {

struct MultiQueryAttentionImpl : torch::nn::Module {
  // dim D, heads H (D % H == 0); causal: token i attends to tokens <= i only.
  MultiQueryAttentionImpl(int64_t dim, int64_t heads, bool causal);

  // x (B, N, D) -> (B, N, D).
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim_, heads_, head_dim_;
  bool causal_;
  torch::nn::Linear wqkv_{nullptr};  // "Wqkv": D -> D + 2d, bias (queries | key | value)
  torch::nn::Linear out_proj_{nullptr};
};
TORCH_MODULE(MultiQueryAttention);

}  // namespace qfae::model
