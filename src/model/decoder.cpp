// The MAE-style pixel decoder. Initialisation follows MAE (xavier-uniform Linear weights, zero
// biases); the parity fixture checks the forward pass only.
#include "qfae/model/decoder.h"

#include "qfae/model/activation_checkpoint.h"
#include "qfae/model/pos_embed.h"
#include "qfae/util/error.h"

namespace qfae::model {

DecoderImpl::DecoderImpl(const DecoderOptions& options) : options_(options) {
  const auto& o = options;
  if (o.dim <= 0 || o.dim % 4 != 0 || o.heads <= 0 || o.dim % o.heads != 0) {
    throw UserError("Decoder: width " + std::to_string(o.dim) +
                    " must be a positive multiple of 4 and of the heads (" +
                    std::to_string(o.heads) + ")");
  }
  if (o.in_dim <= 0 || o.depth < 0 || o.grid <= 0 || o.patch <= 0 || o.registers < 0 ||
      o.channels <= 0) {
    throw UserError(
        "Decoder: input width, grid, patch and channels must be positive and "
        "depth, registers non-negative");
  }
  decoder_embed_ = register_module("decoder_embed", torch::nn::Linear(o.in_dim, o.dim));
  decoder_pos_embed_ = register_buffer(
      "decoder_pos_embed", sincos_pos_embed_2d(o.dim, o.grid).unsqueeze(0));  // (1, G*G, D)
  cls_token_ = register_parameter("cls_token", torch::randn({1, 1, o.dim}) * o.token_init_std);
  reg_tokens_ =
      register_parameter("reg_tokens", torch::randn({1, o.registers, o.dim}) * o.token_init_std);
  decoder_blocks_ = register_module("decoder_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    decoder_blocks_->push_back(ViTBlock(o.dim, o.heads, o.mlp_ratio, o.block_norm_eps));
  }
  decoder_norm_ = register_module(
      "decoder_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.final_norm_eps)));
  decoder_prediction_ = register_module("decoder_prediction",
                                        torch::nn::Linear(o.dim, o.patch * o.patch * o.channels));

  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

torch::Tensor DecoderImpl::predict_patches(const torch::Tensor& tokens) {
  const auto& o = options_;
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(1) == o.grid * o.grid && tokens.size(2) == o.in_dim,
              "Decoder: expected (B, ", o.grid * o.grid, ", ", o.in_dim, "), got ", tokens.sizes());
  const auto b = tokens.size(0);
  auto x = decoder_embed_->forward(tokens) + decoder_pos_embed_;  // (B, G*G, D)
  x = torch::cat({reg_tokens_.expand({b, -1, -1}), cls_token_.expand({b, -1, -1}), x},
                 /*dim=*/1);  // (B, R + 1 + G*G, D)
  const bool recompute = is_training() && torch::GradMode::is_enabled();
  int64_t index = 0;
  for (const auto& block : *decoder_blocks_) {
    auto* vit = block->as<ViTBlock>();
    x = recompute && index++ < o.checkpoint_blocks && x.requires_grad() ? checkpointed(*vit, x)
                                                                        : vit->forward(x);
  }
  x = decoder_prediction_->forward(decoder_norm_->forward(x));  // (B, R + 1 + G*G, p*p*C)
  return x.slice(/*dim=*/1, o.registers + 1);                   // (B, G*G, p*p*C)
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& tokens) {
  return unpatchify(predict_patches(tokens), options_.patch, options_.channels);
}

}  // namespace qfae::model
