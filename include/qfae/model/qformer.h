// The Q-Former bottleneck (`junction` in the reference): Q learned queries read the projected
// encoder tokens through a stack of QFormerBlocks and become the sequence the decoder reconstructs
// from.
#pragma once
#include <torch/torch.h>

#include "qfae/model/qformer_block.h"
#include "qfae/model/qformer_options.h"

// Legend: B batch, Q queries, L encoder tokens, D width.
namespace qfae::model {

struct QFormerImpl : torch::nn::Module {
  explicit QFormerImpl(const QFormerOptions& options);

  // context (B, L, D) projected encoder tokens -> (B, Q, D).
  torch::Tensor forward(const torch::Tensor& context);

  const QFormerOptions& options() const { return options_; }

  QFormerOptions options_;
  torch::Tensor queries_;  // (1, Q, D)
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(QFormer);

}  // namespace qfae::model
