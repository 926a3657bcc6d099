// One Q-Former block: multi-query self-attention over the queries, cross-attention onto the encoder
// tokens (absent in some blocks), then an MLP; no residual connections unless asked for.
#pragma once
#include <torch/torch.h>

#include "qfae/model/cross_attention.h"
#include "qfae/model/multi_query_attention.h"
#include "qfae/model/qformer_options.h"

// Legend: B batch, Q queries, L encoder tokens, D width.
namespace qfae::model {

struct QFormerBlockImpl : torch::nn::Module {
  // with_cross_attn false: the block has no `cross_attn` submodule and skips that step.
  QFormerBlockImpl(const QFormerOptions& options, bool with_cross_attn);

  // x (B, Q, D) queries, context (B, L, D) encoder tokens -> (B, Q, D).
  // Equals attend_context(attend_queries(x), context).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  // The two halves of forward, so that the Q-Former can run the first block's self-attention
  // once per step on the learned queries (1, Q, D), which no image changes.
  // Step 1: self-attention over the queries (plus x when residual). x (N, Q, D) -> (N, Q, D).
  torch::Tensor attend_queries(const torch::Tensor& x);
  // Steps 2-3: cross-attention onto the context (when the block has it), then the MLP.
  // h (B, Q, D), context (B, L, D) -> (B, Q, D).
  torch::Tensor attend_context(const torch::Tensor& h, const torch::Tensor& context);

  bool has_cross_attn() const { return !cross_attn_.is_empty(); }

  bool residual_;
  MultiQueryAttention attn_{nullptr};
  CrossAttention cross_attn_{nullptr};
  torch::nn::Sequential projection_{nullptr};  // LayerNorm, Linear, GELU, Linear, ShardedDropout
};
TORCH_MODULE(QFormerBlock);

}  // namespace qfae::model
