// Building the anomaly model of a config: backbones checked against it, autoencoder created.
#include "qfae/anomaly/anomaly_model.h"

#include <algorithm>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::anomaly {

model::AutoencoderOptions autoencoder_options(const config::Config& c) {
  model::AutoencoderOptions o;
  o.encoder_dims.assign(std::max<size_t>(c.backbone.encoders.size(), 1), c.backbone.encoder_dim);
  auto& q = o.qformer;
  q.dim = c.model.dim;
  q.queries = c.model.queries;
  q.depth = c.model.qformer_depth;
  q.heads = c.model.qformer_heads;
  q.cross_heads = c.model.cross_heads;
  q.cross_head_dim = c.model.cross_head_dim;
  q.mlp_ratio = c.model.qformer_mlp_ratio;
  q.dropout = c.model.dropout;
  q.query_init_std = c.model.query_init_std;
  q.causal = c.model.causal;
  q.residual = c.model.residual;
  q.cross_attn_every_block = c.model.cross_attn_every_block;
  auto& d = o.decoder;
  d.in_dim = c.model.dim;
  d.dim = c.model.decoder_dim;
  d.depth = c.model.decoder_depth;
  d.heads = c.model.decoder_heads;
  d.mlp_ratio = c.model.decoder_mlp_ratio;
  d.grid = c.decoder_grid();
  d.patch = c.model.decoder_patch;
  d.registers = c.model.decoder_registers;
  d.checkpoint_blocks = c.model.decoder_checkpoint;
  return o;
}

AnomalyModel::AnomalyModel(const config::Config& config, torch::Device device)
    : config_(config), device_(device) {
  const auto& bb = config.backbone;
  const auto image_size = config.data.image_size;
  taps_.assign(bb.taps.begin(), bb.taps.end());
  // The backbones state what they lack; the config key that asked for it is named here.
  for (size_t i = 0; i < bb.encoders.size(); ++i) {
    auto enc = std::make_unique<backbone::TorchScriptBackbone>(bb.encoders[i], device);
    with_key("backbone.encoder_model", [&] { enc->require_model(bb.encoder_model); });
    with_key("data.image_size", [&] { enc->require_image_size(image_size); });
    with_key("backbone.encoder_dim", [&] { enc->require_width(bb.encoder_dim); });
    with_key("backbone.taps", [&] { enc->resolve_taps(taps_); });
    log("backbone")->info("encoder {}: {} ({} of {} blocks, {:.1f} M parameters)", i,
                          enc->description().model, enc->description().blocks,
                          enc->description().depth, enc->num_parameters() / 1e6);
    encoders_.push_back(std::move(enc));
  }
  perceptual_ = std::make_shared<backbone::TorchScriptBackbone>(bb.perceptual, device);
  with_key("backbone.perceptual_model", [&] { perceptual_->require_model(bb.perceptual_model); });
  with_key("data.image_size", [&] { perceptual_->require_image_size(image_size); });
  // Both distances share the one MAE; each one's patch sizes and layers under its own keys.
  const auto distance = [&](const std::string& section, const std::vector<int64_t>& patch_sizes,
                            const std::vector<int64_t>& layers) {
    with_key(section + ".patch_sizes", [&] { perceptual_->require_patch_sizes(patch_sizes); });
    with_key(section + ".layers",
             [&] { perceptual_->resolve_taps(std::vector<int>(layers.begin(), layers.end())); });
    return std::make_unique<loss::PerceptualDistance>(
        perceptual_, loss::PerceptualOptions{patch_sizes, layers, image_size});
  };
  train_distance_ = distance("loss", config.loss.patch_sizes, config.loss.layers);
  test_distance_ = distance("eval", config.eval.patch_sizes, config.eval.layers);
  // Process-wide RNG on purpose: LibTorch's initialisers draw from the default generator only, so
  // seeding it right before they run makes fresh weights depend on train.seed alone.
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  autoencoder_ = model::QFormerAutoencoder(autoencoder_options(config));
  autoencoder_->to(device);
}

std::vector<torch::Tensor> AnomalyModel::encoder_tokens(const torch::Tensor& images) {
  std::vector<torch::Tensor> out;
  for (auto& enc : encoders_) {
    auto taps = enc->forward(images, taps_);
    out.push_back(taps.size() == 1 ? taps[0] : torch::cat(taps, /*dim=*/1));  // (B, L, E)
  }
  return out;
}

torch::Tensor AnomalyModel::training_loss(const torch::Tensor& images, const torch::Tensor& x_hat) {
  return train_distance_->loss(images, x_hat);
}

void AnomalyModel::set_frozen_dtype(torch::Dtype dtype) {
  TORCH_CHECK(dtype == torch::kFloat32 || dtype == torch::kBFloat16,
              "AnomalyModel::set_frozen_dtype: float32 or bfloat16 expected");
  if (dtype == frozen_dtype()) return;
  for (auto& enc : encoders_) enc->to(device_, dtype);
  perceptual_->to(device_, dtype);
}

torch::Dtype AnomalyModel::frozen_dtype_for(Precision precision) const {
  return precision == Precision::kBf16 && config_.backbone.frozen_bf16 ? torch::kBFloat16
                                                                        : torch::kFloat32;
}

torch::Tensor AnomalyModel::reconstruct(const torch::Tensor& images) {
  return autoencoder_->forward(encoder_tokens(images));
}

}  // namespace qfae::anomaly
