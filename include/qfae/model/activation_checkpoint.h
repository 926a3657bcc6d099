// Activation checkpointing for the decoder's ViT blocks: the forward pass keeps only the block's
// input; backward runs the block again with gradients on and back-propagates through that.
// Trades one more forward pass of the block for its activations (model.decoder_checkpoint).
#pragma once
#include <torch/torch.h>

#include "qfae/model/vit_block.h"

namespace qfae::model {

// block(x) with its activations recomputed in backward. Gradients reach x and, through a
// re-entrant backward, the block's parameters (accumulated into their .grad as usual). The block
// must outlive the graph (it is a registered submodule). The block has no randomness (no
// dropout), so the recomputation repeats the forward exactly; CUDA autocast is restored as it was.
torch::Tensor checkpointed(ViTBlockImpl& block, const torch::Tensor& x);

}  // namespace qfae::model
