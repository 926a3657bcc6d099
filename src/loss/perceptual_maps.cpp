// Perceptual-distance maps, loss and scores from hidden states.
#include "qfae/loss/perceptual_maps.h"

#include <cmath>

#include "qfae/util/error.h"

namespace qfae::loss {

Reduction parse_reduction(const std::string& name, const std::string& key) {
  if (name == "mean") return Reduction::kMean;
  if (name == "max") return Reduction::kMax;
  throw UserError(key + ": '" + name + "' is not a reduction (expected mean or max)");
}

torch::Tensor cosine_similarity(const torch::Tensor& a, const torch::Tensor& b, int64_t dim,
                                double eps) {
  const std::vector<int64_t> dims = {dim};
  auto a_norm = torch::linalg_vector_norm(a, 2, dims, /*keepdim=*/true).clamp_min(eps);
  auto b_norm = torch::linalg_vector_norm(b, 2, dims, /*keepdim=*/true).clamp_min(eps);
  return ((a / a_norm) * (b / b_norm)).sum(dim);
}

torch::Tensor tokens_to_grid(const torch::Tensor& tokens, int64_t num_prefix) {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(1) > num_prefix && num_prefix >= 0,
              "tokens_to_grid: expected (B, ", num_prefix, " + g*g, C), got ", tokens.sizes());
  const auto n = tokens.size(1) - num_prefix;
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(double(n))));
  TORCH_CHECK(g * g == n, "tokens_to_grid: ", n, " patch tokens do not form a square grid");
  auto patches = tokens.slice(/*dim=*/1, num_prefix);                              // (B, g*g, C)
  return patches.transpose(1, 2).reshape({tokens.size(0), tokens.size(2), g, g});  // (B, C, g, g)
}

torch::Tensor cosine_distance_map(const torch::Tensor& h_x, const torch::Tensor& h_xhat) {
  TORCH_CHECK(h_x.dim() == 4 && h_x.sizes() == h_xhat.sizes(),
              "cosine_distance_map: expected two equal (B, C, g, g) tensors, got ", h_x.sizes(),
              " and ", h_xhat.sizes());
  return 1.0 - loss::cosine_similarity(h_x, h_xhat, /*dim=*/1).unsqueeze(1);  // (B, 1, g, g)
}

torch::Tensor layer_maps(const HiddenStates& h_x, const HiddenStates& h_xhat, int64_t image_size) {
  TORCH_CHECK(!h_x.empty() && h_x.size() == h_xhat.size(),
              "layer_maps: expected the same non-zero number of scales, got ", h_x.size(), " and ",
              h_xhat.size());
  const auto layers = h_x[0].size();
  TORCH_CHECK(layers > 0, "layer_maps: no layers");
  namespace F = torch::nn::functional;
  const auto upsample = F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{image_size, image_size})
                            .mode(torch::kBilinear)
                            .align_corners(false);
  std::vector<torch::Tensor> per_layer;
  for (size_t r = 0; r < layers; ++r) {
    torch::Tensor product;
    for (size_t s = 0; s < h_x.size(); ++s) {
      TORCH_CHECK(h_x[s].size() == layers && h_xhat[s].size() == layers, "layer_maps: scale ", s,
                  " has ", h_x[s].size(), " / ", h_xhat[s].size(), " layers, expected ", layers);
      auto map = F::interpolate(cosine_distance_map(h_x[s][r], h_xhat[s][r]), upsample);
      product = product.defined() ? product * map : map;  // (B, 1, H, W)
    }
    per_layer.push_back(product);
  }
  return torch::stack(per_layer);  // (R, B, 1, H, W)
}

namespace {
void check_maps(const torch::Tensor& maps, const char* who) {
  TORCH_CHECK(maps.dim() == 5 && maps.size(2) == 1, who,
              ": expected layer maps (R, B, 1, H, W), got ", maps.sizes());
}
}  // namespace

torch::Tensor perceptual_loss(const torch::Tensor& maps) {
  check_maps(maps, "perceptual_loss");
  return maps.mean();
}

torch::Tensor pixel_map(const torch::Tensor& maps) {
  check_maps(maps, "pixel_map");
  return maps.mean(/*dim=*/0);  // (B, 1, H, W)
}

torch::Tensor image_scores(const torch::Tensor& maps, Reduction over_pixels,
                           Reduction over_layers) {
  check_maps(maps, "image_scores");
  auto flat = maps.flatten(/*start_dim=*/2);  // (R, B, H*W)
  auto per_layer = over_pixels == Reduction::kMax ? std::get<0>(flat.max(/*dim=*/2))
                                                  : flat.mean(/*dim=*/2);  // (R, B)
  return over_layers == Reduction::kMax ? std::get<0>(per_layer.max(/*dim=*/0))
                                        : per_layer.mean(/*dim=*/0);  // (B)
}

}  // namespace qfae::loss
