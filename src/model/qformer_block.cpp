// One Q-Former block: self-attention -> cross-attention -> MLP.
#include "qfae/model/qformer_block.h"

namespace qfae::model {

QFormerBlockImpl::QFormerBlockImpl(const QFormerOptions& options, bool with_cross_attn)
    : residual_(options.residual) {
  const int64_t d = options.dim;
  const auto hidden = static_cast<int64_t>(options.mlp_ratio * static_cast<double>(d));
  attn_ = register_module("attn", MultiQueryAttention(d, options.heads, options.causal));
  if (with_cross_attn) {
    cross_attn_ = register_module(
        "cross_attn",
        CrossAttention(d, options.cross_heads, options.cross_head_dim, options.layer_norm_eps));
  }
  projection_ = register_module(
      "projection",
      torch::nn::Sequential(
          torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(options.layer_norm_eps)),
          torch::nn::Linear(d, hidden), torch::nn::GELU(), torch::nn::Linear(hidden, d),
          ShardedDropout(options.dropout, options.batch_shard)));
}

torch::Tensor QFormerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  return attend_context(attend_queries(x), context);
}

torch::Tensor QFormerBlockImpl::attend_queries(const torch::Tensor& x) {
  return residual_ ? x + attn_->forward(x) : attn_->forward(x);  // (N, Q, D)
}

torch::Tensor QFormerBlockImpl::attend_context(const torch::Tensor& h,
                                               const torch::Tensor& context) {
  auto x = h;  // (B, Q, D)
  if (has_cross_attn()) {
    x = residual_ ? x + cross_attn_->forward(x, context) : cross_attn_->forward(x, context);
  }
  return residual_ ? x + projection_->forward(x) : projection_->forward(x);
}

}  // namespace qfae::model
