// Re-entrant activation checkpointing of one ViT block (see checkpoint.h).
#include "qfae/model/activation_checkpoint.h"

#include <cstdint>

#include "qfae/util/torch_compat.h"

namespace qfae::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
  // Runs below autograd: nothing inside the block is recorded or kept.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, ViTBlockImpl* block) {
    ctx->save_for_backward({x});
    ctx->saved_data["block"] = static_cast<int64_t>(reinterpret_cast<std::intptr_t>(block));
    ctx->saved_data["autocast"] = compat::autocast_enabled(x.device().type());
    return block->forward(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* block = reinterpret_cast<ViTBlockImpl*>(
        static_cast<std::intptr_t>(ctx->saved_data["block"].toInt()));
    const auto input = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor output;
    {
      torch::AutoGradMode grad(true);
      compat::Bf16Autocast autocast(input.device().type(), ctx->saved_data["autocast"].toBool());
      output = block->forward(input);
    }
    torch::autograd::backward({output}, {grad_outputs[0]});
    return {input.grad(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed(ViTBlockImpl& block, const torch::Tensor& x) {
  return CheckpointedBlock::apply(x, &block);
}

}  // namespace qfae::model
