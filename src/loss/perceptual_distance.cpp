// The perceptual distance through a frozen multi-patch-size MAE.
#include "qfae/loss/perceptual_distance.h"

#include "qfae/util/error.h"

namespace qfae::loss {

PerceptualDistance::PerceptualDistance(std::shared_ptr<backbone::TorchScriptBackbone> mae,
                                       PerceptualOptions options)
    : mae_(std::move(mae)), options_(std::move(options)) {
  if (!mae_) throw UserError("backbone.perceptual: no perceptual backbone was given");
  if (options_.patch_sizes.empty()) throw UserError("loss.patch_sizes: must not be empty");
  if (options_.layers.empty()) throw UserError("loss.layers: must not be empty");
  for (const auto layer : options_.layers) taps_.push_back(static_cast<int>(layer));
  backbone::BackboneExpectation expect;
  expect.image_size = options_.image_size;
  expect.patch_sizes = options_.patch_sizes;
  expect.taps = taps_;
  expect.model_key = "backbone.perceptual_model";
  expect.width_key = "backbone.perceptual";
  expect.taps_key = "loss.layers";
  mae_->check(expect, "backbone.perceptual");
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
