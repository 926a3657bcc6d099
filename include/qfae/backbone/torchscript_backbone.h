// A frozen ViT backbone loaded from the TorchScript file written by scripts/export_backbone.py:
// block outputs at chosen taps, for the encoder(s) and the perceptual MAE.
//
// Shapes: B batch, H = W image side, g token grid side (image_size / patch size),
// P prefix tokens (CLS + registers), D width.
#pragma once
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "qfae/backbone/description.h"

namespace qfae::backbone {

class TorchScriptBackbone {
 public:
  // Reads qfae.json (read_description), loads the file, switches to eval mode and freezes every
  // parameter. Throws UserError naming the file when it is missing, not TorchScript, or lacks a
  // valid qfae.json.
  TorchScriptBackbone(const std::string& path, torch::Device device);

  const BackboneDescription& description() const { return description_; }
  const std::string& path() const { return path_; }

  // What a config may ask of the file. Each throws a UserError naming the file and stating the
  // mismatch, both values included; which config key asked is for the caller to say (with_key).
  // An empty model, or a zero size or width, accepts anything.
  void require_model(const std::string& model) const;
  void require_image_size(int64_t image_size) const;
  void require_width(int64_t width) const;
  void require_patch_sizes(const std::vector<int64_t>& patch_sizes) const;

  // Python-style negative taps count from `depth`; UserError when out of range or beyond `blocks`.
  std::vector<int64_t> resolve_taps(const std::vector<int>& taps) const;

  // Token grid side for a patch size (0 = the default one); UserError when not exported.
  int64_t grid(int64_t patch_size) const;

  // images (B, 3, H, W), H = W = image_size, in any dtype/device (converted to the module's).
  // Returns one (B, P + g*g, D) tensor per tap in the weights' dtype, float32 for bf16/fp16
  // weights, in the order given: raw block outputs, prefix tokens first, patch tokens row-major.
  // Gradients reach `images` when it requires grad (never the weights); otherwise the module runs
  // under NoGradGuard.
  std::vector<torch::Tensor> forward(const torch::Tensor& images, const std::vector<int>& taps,
                                     int64_t patch_size = 0);

  // Moves and casts the weights; back to float32 they are the loaded values again, bit for bit
  // (a host copy is kept from the first cast away from float32).
  void to(torch::Device device, torch::Dtype dtype = torch::kFloat32);
  torch::Device device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }
  int64_t num_parameters() const;
  std::vector<torch::Tensor> parameters() const;  // the frozen weights (requires_grad false)

 private:
  void freeze();
  // module_.forward under NoGradGuard unless `with_grad`; a TorchScript error (the file does not
  // match its qfae.json) becomes a UserError naming the file.
  c10::List<torch::Tensor> run_module(std::vector<torch::jit::IValue>& inputs, bool with_grad);
  // "" when the tap resolves, otherwise why not; `resolved` receives the index.
  std::string resolve_tap(int tap, int64_t* resolved) const;

  std::string path_;
  torch::jit::Module module_;
  BackboneDescription description_;
  torch::Device device_;
  torch::Dtype dtype_ = torch::kFloat32;
  std::vector<torch::Tensor> as_loaded_;  // float32 weights and buffers on the host, once cast
};

}  // namespace qfae::backbone
