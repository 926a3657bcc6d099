// The perceptual distance: a frozen MAE (one TorchScript export serving several patch sizes) turns
// x and x_hat into hidden states, compared by perceptual_maps.h. The training loss and the anomaly
// maps both come from here.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "qfae/backbone/torchscript_backbone.h"
#include "qfae/loss/perceptual_maps.h"

// Legend: B batch, R layers, S patch sizes, H = W image side.
namespace qfae::loss {

struct PerceptualOptions {
  std::vector<int64_t> patch_sizes = {32, 56};  // training default; testing uses {16, 32, 56}
  std::vector<int64_t> layers = {15, 19};       // 0-based MAE block indices
  int64_t image_size = 224;
};

class PerceptualDistance {
 public:
  // Checks that the backbone serves every patch size and layer at image_size: otherwise a
  // qfae::UserError naming the file and the value it lacks (the caller names the config key).
  PerceptualDistance(std::shared_ptr<backbone::TorchScriptBackbone> mae, PerceptualOptions options);

  // images (B, 3, H, W) in the dataset normalisation -> hidden[s][r] (B, C, g_s, g_s).
  // One backbone call per patch size; gradients reach `images` when it requires grad.
  HiddenStates hidden_states(const torch::Tensor& images);

  // x, x_hat (B, 3, H, W) -> (R, B, 1, H, W). x runs without gradient; x_hat keeps its own, so the
  // maps are differentiable in x_hat only (x and x_hat are separate backbone calls: batching them
  // together would either cut x_hat's gradient or build a graph for x).
  torch::Tensor layer_maps(const torch::Tensor& x, const torch::Tensor& x_hat);

  // Mean of layer_maps (0-dim), differentiable in x_hat.
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& x_hat);

  const PerceptualOptions& options() const { return options_; }
  backbone::TorchScriptBackbone& backbone() { return *mae_; }

 private:
  std::shared_ptr<backbone::TorchScriptBackbone> mae_;
  PerceptualOptions options_;
  std::vector<int> taps_;
};

}  // namespace qfae::loss
