// Multi-query self-attention: one shared key/value head broadcast over the query heads.
#include "qfae/model/multi_query_attention.h"

#include <cmath>

#include "qfae/util/torch_compat.h"

namespace qfae::model {

MultiQueryAttentionImpl::MultiQueryAttentionImpl(int64_t dim, int64_t heads, bool causal)
    : dim_(dim), heads_(heads), head_dim_(heads > 0 ? dim / heads : 0), causal_(causal) {
  TORCH_CHECK(heads > 0 && dim % heads == 0, "MultiQueryAttention: width ", dim,
              " must be a positive multiple of the number of heads ", heads);
  wqkv_ = register_module("Wqkv", torch::nn::Linear(dim, dim + 2 * head_dim_));
  out_proj_ = register_module("out_proj", torch::nn::Linear(dim, dim));
}

torch::Tensor MultiQueryAttentionImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == dim_, "MultiQueryAttention: expected (B, N, ", dim_,
              "), got ", x.sizes());
  const auto b = x.size(0), n = x.size(1);
  auto qkv = wqkv_->forward(x).split_with_sizes({dim_, head_dim_, head_dim_}, /*dim=*/-1);
  auto q = qkv[0].view({b, n, heads_, head_dim_}).transpose(1, 2);  // (B, H, N, d)
  auto k = qkv[1].unsqueeze(1).expand({b, heads_, n, head_dim_});   // (B, H, N, d)
  auto v = qkv[2].unsqueeze(1).expand({b, heads_, n, head_dim_});   // (B, H, N, d)
  auto out = compat::scaled_dot_product_attention(q, k, v, std::nullopt, causal_,
                                                  1.0 / std::sqrt(double(head_dim_)));
  out = out.transpose(1, 2).reshape({b, n, dim_});  // (B, N, D)
  return out_proj_->forward(out);
}

}  // namespace qfae::model
