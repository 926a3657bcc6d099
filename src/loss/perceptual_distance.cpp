// The perceptual distance through a frozen multi-patch-size MAE.
#include "qfae/loss/perceptual_distance.h"

#include "qfae/util/error.h"

namespace qfae::loss {

PerceptualDistance::PerceptualDistance(std::shared_ptr<backbone::TorchScriptBackbone> mae,
                                       PerceptualOptions options)
    : mae_(std::move(mae)), options_(std::move(options)) {
  TORCH_CHECK(mae_, "PerceptualDistance: no backbone given");
  if (options_.patch_sizes.empty()) throw UserError("no perceptual patch sizes given");
  if (options_.layers.empty()) throw UserError("no perceptual layers given");
  for (const auto layer : options_.layers) taps_.push_back(static_cast<int>(layer));
  mae_->require_image_size(options_.image_size);
  mae_->require_patch_sizes(options_.patch_sizes);
  mae_->resolve_taps(taps_);
}

HiddenStates PerceptualDistance::hidden_states(const torch::Tensor& images) {
  const auto side = options_.image_size;
  TORCH_CHECK(
      images.dim() == 4 && images.size(1) == 3 && images.size(2) == side && images.size(3) == side,
      "PerceptualDistance: expected images (B, 3, ", side, ", ", side, "), got ", images.sizes());
  const auto num_prefix = mae_->description().num_prefix;
  HiddenStates hidden;
  for (const auto patch : options_.patch_sizes) {
    std::vector<torch::Tensor> per_layer;
    for (const auto& tokens : mae_->forward(images, taps_, patch)) {
      per_layer.push_back(tokens_to_grid(tokens, num_prefix));  // (B, C, g, g)
    }
    hidden.push_back(std::move(per_layer));
  }
  return hidden;
}

torch::Tensor PerceptualDistance::layer_maps(const torch::Tensor& x, const torch::Tensor& x_hat) {
  TORCH_CHECK(x.sizes() == x_hat.sizes(), "PerceptualDistance: x ", x.sizes(), " and x_hat ",
              x_hat.sizes(), " differ in shape");
  HiddenStates h_x;
  {
    torch::NoGradGuard no_grad;
    h_x = hidden_states(x.detach());
  }
  return loss::layer_maps(h_x, hidden_states(x_hat), options_.image_size);
}

torch::Tensor PerceptualDistance::loss(const torch::Tensor& x, const torch::Tensor& x_hat) {
  return perceptual_loss(layer_maps(x, x_hat));
}

}  // namespace qfae::loss
