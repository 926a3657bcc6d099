// The whole anomaly model of a config: frozen encoder backbone(s), the trainable Q-Former
// autoencoder, and the frozen perceptual MAE that gives both the training loss and the maps.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "qfae/anomaly/precision.h"
#include "qfae/backbone/torchscript_backbone.h"
#include "qfae/config/config.h"
#include "qfae/loss/perceptual_distance.h"
#include "qfae/model/autoencoder.h"

// Legend: B batch, H = W image side, L fused encoder tokens, E encoder width.
namespace qfae::anomaly {

// Model hyper-parameters of a config (the decoder grid follows from image size and patch).
model::AutoencoderOptions autoencoder_options(const config::Config& config);

class AnomalyModel {
 public:
  // Loads and checks the backbones named by the config (UserError naming file and key on any
  // mismatch) and builds the autoencoder with fresh weights, on `device`.
  AnomalyModel(const config::Config& config, torch::Device device);

  // images (B, 3, H, W) normalised -> per encoder, its taps' raw outputs concatenated on the
  // token axis (B, taps * (P + g*g), E). No gradient.
  std::vector<torch::Tensor> encoder_tokens(const torch::Tensor& images);
  // images -> reconstruction x_hat (B, 3, H, W) in the same normalised space.
  torch::Tensor reconstruct(const torch::Tensor& images);
  // The training loss (loss.patch_sizes, loss.layers), differentiable in x_hat (0-dim).
  torch::Tensor training_loss(const torch::Tensor& images, const torch::Tensor& x_hat);
  // The test-time perceptual distance (eval.patch_sizes, eval.layers) for maps and scores.
  loss::PerceptualDistance& test_distance() { return *test_distance_; }

  // Weights of the frozen networks (encoders and perceptual MAE): float32 (as loaded) or bf16.
  // Their outputs stay float32 either way; gradients still reach x_hat through the MAE. Back to
  // float32 after bf16 they are the loaded weights again, bit for bit.
  void set_frozen_dtype(torch::Dtype dtype);
  torch::Dtype frozen_dtype() const { return perceptual_->dtype(); }
  // The frozen dtype for a phase run at `precision`: bf16 under bf16 when backbone.frozen_bf16.
  torch::Dtype frozen_dtype_for(Precision precision) const;

  model::QFormerAutoencoder& autoencoder() { return autoencoder_; }
  backbone::TorchScriptBackbone& perceptual_backbone() { return *perceptual_; }
  const config::Config& config() const { return config_; }
  torch::Device device() const { return device_; }

 private:
  config::Config config_;
  torch::Device device_;
  std::vector<std::unique_ptr<backbone::TorchScriptBackbone>> encoders_;
  std::vector<int> taps_;
  std::shared_ptr<backbone::TorchScriptBackbone> perceptual_;
  std::unique_ptr<loss::PerceptualDistance> train_distance_, test_distance_;
  model::QFormerAutoencoder autoencoder_{nullptr};
};

// Holds an AnomalyModel's frozen networks in `dtype` for its scope, and the dtype before at its end
// (validation during bf16 training scores in eval.precision's dtype).
class FrozenDtypeScope {
 public:
  FrozenDtypeScope(AnomalyModel& model, torch::Dtype dtype)
      : model_(model), before_(model.frozen_dtype()) {
    model_.set_frozen_dtype(dtype);
  }
  ~FrozenDtypeScope() { model_.set_frozen_dtype(before_); }
  FrozenDtypeScope(const FrozenDtypeScope&) = delete;
  FrozenDtypeScope& operator=(const FrozenDtypeScope&) = delete;

 private:
  AnomalyModel& model_;
  torch::Dtype before_;
};

}  // namespace qfae::anomaly
