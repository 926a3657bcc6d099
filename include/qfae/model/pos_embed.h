// The fixed 2-D sine-cosine position embedding of MAE's decoder, and MAE's unpatchify.
#pragma once
#include <torch/torch.h>

// Legend: G grid side, D width, B batch, p patch side, C channels.
namespace qfae::model {

// (G*G, D) float32, token index = row * G + col. Channels [0, D/2) encode the column, [D/2, D) the
// row; in each half the first D/4 are sin(pos * w_i), the next D/4 cos(pos * w_i), with
// w_i = 1 / 10000^(i / (D/4)). Computed in float64 and rounded once, as MAE's numpy code does.
// D must be a positive multiple of 4.
torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid);

// patches (B, G*G, p*p*C), each token's outputs ordered (row in patch, col in patch, channel) with
// the channel fastest -> images (B, C, G*p, G*p).
torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch, int64_t channels = 3);

}  // namespace qfae::model
