// The perceptual-distance math on hidden states, independent of any network: 1 - cosine maps per
// scale and layer, upsampled and multiplied over scales, and the loss / pixel map / image scores
// derived from them (docs/model.md §4-5).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

// Legend: B batch, C channels, g grid side, S scales (patch sizes), R layers, H = W image side,
// P prefix tokens.
namespace qfae::loss {

// hidden[s][r]: (B, C, g_s, g_s) hidden state of scale s, layer r.
using HiddenStates = std::vector<std::vector<torch::Tensor>>;

enum class Reduction { kMean, kMax };

// "mean" | "max"; anything else is a qfae::UserError naming `key`.
Reduction parse_reduction(const std::string& name, const std::string& key);

// Cosine similarity along `dim` as PyTorch >= 1.13 computes it: each vector divided by
// max(||v||, eps), then the dot product (so |cos| <= 1).
torch::Tensor cosine_similarity(const torch::Tensor& a, const torch::Tensor& b, int64_t dim,
                                double eps = 1e-8);

// Block tokens (B, P + g*g, C) -> patch tokens on their grid (B, C, g, g), row-major.
torch::Tensor tokens_to_grid(const torch::Tensor& tokens, int64_t num_prefix);

// (B, C, g, g) twice -> 1 - cosine over channels (B, 1, g, g).
torch::Tensor cosine_distance_map(const torch::Tensor& h_x, const torch::Tensor& h_xhat);

// Per layer: the product over scales of the bilinearly upsampled (align_corners false) distance
// maps -> (R, B, 1, H, W). Both inputs are [scale][layer] with the same layout.
torch::Tensor layer_maps(const HiddenStates& h_x, const HiddenStates& h_xhat, int64_t image_size);

// Training loss: mean over layers, batch and pixels (a 0-dim tensor).
torch::Tensor perceptual_loss(const torch::Tensor& layer_maps);

// Pixel anomaly map: mean over layers (R, B, 1, H, W) -> (B, 1, H, W).
torch::Tensor pixel_map(const torch::Tensor& layer_maps);

// Image score: each layer's map reduced over pixels, then over layers -> (B).
torch::Tensor image_scores(const torch::Tensor& layer_maps, Reduction over_pixels,
                           Reduction over_layers);

}  // namespace qfae::loss
