// Cross-attention with a null key/value: every query may also attend to "nothing".
#include "qfae/model/cross_attention.h"

#include <cmath>

#include "qfae/util/torch_compat.h"

namespace qfae::model {

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head,
                                       double layer_norm_eps)
    : dim_(dim), heads_(heads), dim_head_(dim_head) {
  TORCH_CHECK(dim > 0 && heads > 0 && dim_head > 0, "CrossAttention: dim ", dim, ", heads ", heads,
              " and dim_head ", dim_head, " must be positive");
  const int64_t inner = heads * dim_head;
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(layer_norm_eps)));
  to_q_ =
      register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(dim, inner).bias(false)));
  to_kv_ = register_module("to_kv",
                           torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * inner).bias(false)));
  null_kv_ = register_parameter("null_kv", torch::randn({2, dim_head}));
  to_out_ = register_module(
      "to_out", torch::nn::Sequential(
                    torch::nn::Linear(torch::nn::LinearOptions(inner, dim).bias(false)),
                    torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(layer_norm_eps))));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == dim_, "CrossAttention: expected queries (B, Q, ", dim_,
              "), got ", x.sizes());
  TORCH_CHECK(context.dim() == 3 && context.size(0) == x.size(0) && context.size(2) == dim_,
              "CrossAttention: expected context (", x.size(0), ", L, ", dim_, "), got ",
              context.sizes());
  const auto b = x.size(0), nq = x.size(1), nl = context.size(1);
  auto q = to_q_->forward(norm_->forward(x)).view({b, nq, heads_, dim_head_}).transpose(1, 2);
  auto kv = to_kv_->forward(context).chunk(2, /*dim=*/-1);
  auto k = kv[0].view({b, nl, heads_, dim_head_}).transpose(1, 2);  // (B, h, L, d)
  auto v = kv[1].view({b, nl, heads_, dim_head_}).transpose(1, 2);  // (B, h, L, d)
  auto null_k = null_kv_[0].view({1, 1, 1, dim_head_}).expand({b, heads_, 1, dim_head_});
  auto null_v = null_kv_[1].view({1, 1, 1, dim_head_}).expand({b, heads_, 1, dim_head_});
  k = torch::cat({null_k, k}, /*dim=*/2);  // (B, h, 1 + L, d)
  v = torch::cat({null_v, v}, /*dim=*/2);  // (B, h, 1 + L, d)
  auto out = compat::scaled_dot_product_attention(q, k, v, std::nullopt, /*is_causal=*/false,
                                                  1.0 / std::sqrt(double(dim_head_)));
  out = out.transpose(1, 2).reshape({b, nq, heads_ * dim_head_});  // (B, Q, h*d)
  return to_out_->forward(out);
}

}  // namespace qfae::model
