// The Q-Former: learned queries tiled over the batch, then the blocks in order. The first block's
// self-attention reads only the learned queries, so it runs once per call, not once per image.
#include "qfae/model/qformer.h"

#include "qfae/util/error.h"

namespace qfae::model {

QFormerImpl::QFormerImpl(const QFormerOptions& options) : options_(options) {
  if (options.dim <= 0 || options.queries <= 0 || options.depth <= 0) {
    throw UserError("QFormer: width (" + std::to_string(options.dim) + "), queries (" +
                    std::to_string(options.queries) + ") and depth (" +
                    std::to_string(options.depth) + ") must be positive");
  }
  if (options.heads <= 0 || options.dim % options.heads != 0) {
    throw UserError("QFormer: " + std::to_string(options.heads) +
                    " heads do not divide the width " + std::to_string(options.dim));
  }
  queries_ = register_parameter(
      "queries", torch::randn({1, options.queries, options.dim}) * options.query_init_std);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) {
    const bool cross = options.cross_attn_every_block || i % 2 == 0;
    blocks_->push_back(QFormerBlock(options, cross));
  }
}

torch::Tensor QFormerImpl::forward(const torch::Tensor& context) {
  TORCH_CHECK(context.dim() == 3 && context.size(2) == options_.dim,
              "QFormer: expected encoder tokens (B, L, ", options_.dim, "), got ", context.sizes());
  const auto b = context.size(0);
  // Same values and gradients as tiling the queries first: expand's backward sums over the batch,
  // which by linearity equals the sum of B per-image gradients (up to float rounding order).
  auto first = blocks_[0]->as<QFormerBlock>();
  auto x = first->attend_queries(queries_).expand({b, -1, -1});  // (1, Q, D) -> (B, Q, D)
  x = first->attend_context(x, context);                         // (B, Q, D)
  for (size_t i = 1; i < blocks_->size(); ++i) {
    x = blocks_[i]->as<QFormerBlock>()->forward(x, context);
  }
  return x;
}

}  // namespace qfae::model
