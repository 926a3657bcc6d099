// The MAE-style pixel decoder: embeds the Q-Former's queries, adds a fixed 2-D sin-cos position
// embedding, runs pre-norm ViT blocks with register and CLS tokens, and unpatchifies to an image.
#pragma once
#include <torch/torch.h>

#include "qfae/model/vit_block.h"

// Legend: B batch, G grid side, Q = G*G tokens, Din input width, D decoder width, R registers,
// p patch side, C channels; the output image side is G*p.
namespace qfae::model {

struct DecoderOptions {
  int64_t in_dim = 768;  // width of the incoming queries
  int64_t dim = 768;     // decoder width D (a multiple of 4 and of heads)
  int64_t depth = 6;     // ViT blocks
  int64_t heads = 12;
  double mlp_ratio = 4.0;
  int64_t grid = 28;             // G: the decoder reads G*G tokens
  int64_t patch = 8;             // p: each token becomes a p x p patch
  int64_t registers = 4;         // R register tokens
  int64_t channels = 3;          // C output channels
  double token_init_std = 1e-3;  // cls and register tokens ~ N(0, std^2)
  // LayerNorm eps as the reference has them (measured against the parity fixture in float64:
  // 1e-6 inside the blocks, as MAE's decoder; 1e-5, PyTorch's default, for decoder_norm).
  double block_norm_eps = 1e-6;
  double final_norm_eps = 1e-5;
  // In training, the first `checkpoint_blocks` blocks keep no activations and recompute them in
  // backward (checkpoint.h): less memory, one more forward pass of those blocks. 0 = off.
  int64_t checkpoint_blocks = 0;
};

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const DecoderOptions& options);

  // tokens (B, G*G, Din) -> image (B, C, G*p, G*p), no output activation.
  torch::Tensor forward(const torch::Tensor& tokens);

  // tokens (B, G*G, Din) -> patches (B, G*G, p*p*C), before unpatchify.
  torch::Tensor predict_patches(const torch::Tensor& tokens);

  const DecoderOptions& options() const { return options_; }

  DecoderOptions options_;
  torch::nn::Linear decoder_embed_{nullptr};
  torch::Tensor decoder_pos_embed_;  // buffer (1, G*G, D), fixed sin-cos
  torch::Tensor cls_token_;          // (1, 1, D)
  torch::Tensor reg_tokens_;         // (1, R, D)
  torch::nn::ModuleList decoder_blocks_{nullptr};
  torch::nn::LayerNorm decoder_norm_{nullptr};
  torch::nn::Linear decoder_prediction_{nullptr};
};
TORCH_MODULE(Decoder);

}  // namespace qfae::model
