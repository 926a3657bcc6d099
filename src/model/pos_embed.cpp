// MAE's fixed 2-D sin-cos position embedding and its unpatchify.
#include "qfae/model/pos_embed.h"

#include <cmath>

namespace qfae::model {

torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid) {
  TORCH_CHECK(dim > 0 && dim % 4 == 0, "sincos_pos_embed_2d: width ", dim,
              " must be a positive multiple of 4");
  TORCH_CHECK(grid > 0, "sincos_pos_embed_2d: grid side ", grid, " must be positive");
  const int64_t quarter = dim / 4;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto omega = 1.0 / torch::pow(10000.0, torch::arange(quarter, opts) / double(quarter));  // (D/4)
  auto pos = torch::arange(grid, opts);                                                    // (G)
  auto angles = pos.unsqueeze(1) * omega.unsqueeze(0);                // (G, D/4)
  auto emb_1d = torch::cat({angles.sin(), angles.cos()}, /*dim=*/1);  // (G, D/2)
  auto by_col = emb_1d.unsqueeze(0).expand({grid, grid, dim / 2});    // [row][col] -> emb(col)
  auto by_row = emb_1d.unsqueeze(1).expand({grid, grid, dim / 2});    // [row][col] -> emb(row)
  return torch::cat({by_col, by_row}, /*dim=*/2).reshape({grid * grid, dim}).to(torch::kFloat32);
}

torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch, int64_t channels) {
  TORCH_CHECK(patches.dim() == 3 && patches.size(2) == patch * patch * channels,
              "unpatchify: expected (B, G*G, ", patch * patch * channels, "), got ",
              patches.sizes());
  const auto b = patches.size(0);
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(double(patches.size(1)))));
  TORCH_CHECK(g * g == patches.size(1), "unpatchify: ", patches.size(1),
              " tokens do not form a square grid");
  auto x = patches.reshape({b, g, g, patch, patch, channels});  // (B, G, G, p, p, C)
  x = x.permute({0, 5, 1, 3, 2, 4});                            // (B, C, G, p, G, p)
  return x.reshape({b, channels, g * patch, g * patch});        // (B, C, G*p, G*p)
}

}  // namespace qfae::model
