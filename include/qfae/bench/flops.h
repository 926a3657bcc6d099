// Analytic FLOP count of a config's training step and evaluation step (matrix products only), for
// `qfae bench`'s utilisation figure. The formula is written out in docs/performance.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "qfae/backbone/description.h"
#include "qfae/config/config.h"

// Legend: B batch, N tokens, D width, M MLP hidden width, g token grid side, p patch side,
// C image channels, Q queries, L fused encoder tokens, I cross-attention inner width.
namespace qfae::bench {

// One frozen ViT as it runs: patch embedding (a p x p conv with stride p), then `blocks` pre-norm
// blocks on N = prefix + g*g tokens. Blocks after the deepest tap or layer are not run.
struct VitShape {
  int64_t prefix = 0;      // CLS + register tokens
  int64_t grid = 0;        // g
  int64_t patch = 0;       // p
  int64_t width = 0;       // D
  int64_t mlp_hidden = 0;  // M (4 D for every backbone qfae supports)
  int64_t blocks = 0;      // blocks run
  int64_t channels = 3;    // C
  int64_t tokens() const { return prefix + grid * grid; }
};

// Forward FLOPs of one image through a part, split by how their backward scales:
// `weights` are activation x parameter products (Linear, conv): 1 product per gradient needed
// (input and/or weight); `attention` are activation x activation products (q k^T, A v): 2 when the
// gradient flows (both operands).
struct MatmulFlops {
  double weights = 0;
  double attention = 0;
  double total() const { return weights + attention; }
  MatmulFlops& operator+=(const MatmulFlops& o) {
    weights += o.weights;
    attention += o.attention;
    return *this;
  }
};

// Per image: patch embedding 2 g^2 (C p^2) D; per block 2N(3D)D + 2ND^2 (qkv, proj),
// 2 (2 N^2 D) (q k^T and A v over all heads), 2 (2 N D M) (MLP).
MatmulFlops vit_flops(const VitShape& vit);

// Everything a config runs, with the frozen networks' shapes read off their files.
struct ModelShapes {
  std::vector<VitShape> encoders;
  std::vector<int64_t> encoder_tokens;  // L_e: taps x tokens, per encoder
  std::vector<int64_t> encoder_widths;  // E_e
  int64_t dim = 0;                      // D of the projection and the Q-Former
  int64_t queries = 0;                  // Q
  int64_t qformer_depth = 0;
  int64_t qformer_heads = 0;     // self-attention head width = D / heads
  int64_t cross_inner = 0;       // I = cross heads x cross head width
  std::vector<bool> cross_attn;  // per Q-Former block
  int64_t qformer_mlp_hidden = 0;
  int64_t decoder_dim = 0, decoder_depth = 0, decoder_mlp_hidden = 0;
  int64_t decoder_tokens = 0;                               // Q + registers + CLS
  int64_t decoder_out = 0;                                  // p^2 C
  std::vector<VitShape> perceptual_train, perceptual_eval;  // one per patch size
};

// `encoders` and `perceptual` are the files' own descriptions (backbone::read_description: prefix
// tokens, grids, depth); the
// config gives taps, patch sizes, layers and the trainable model. Assumes MLP ratio 4 in the frozen
// networks (true of DINO, DINOv2 and MAE ViTs).
ModelShapes model_shapes(const config::Config& config,
                         const std::vector<backbone::BackboneDescription>& encoders,
                         const backbone::BackboneDescription& perceptual);

struct FlopPart {
  std::string name;
  double forward = 0;   // FLOPs of the whole step (all B images)
  double backward = 0;  // 0 where no gradient is computed
};

struct FlopCount {
  int64_t batch = 0;
  std::vector<FlopPart> parts;
  double forward() const;
  double backward() const;
  double total() const { return forward() + backward(); }
  double per_image() const { return batch > 0 ? total() / static_cast<double>(batch) : 0.0; }
};

// One training step of B images: forward of everything, backward of the trainable path and of
// the perceptual MAE through x_hat (input gradients only: its weights are frozen), none through
// the encoder or the MAE on x. The first Q-Former block's query self-attention runs once per step.
FlopCount train_step_flops(const ModelShapes& shapes, int64_t batch);

// One evaluation step: reconstruction, then the MAE on x and on x_hat at the eval patch sizes and
// layers (maps and scores); no backward.
FlopCount eval_step_flops(const ModelShapes& shapes, int64_t batch);

// The formula in a few lines of text, for --help and the bench output.
std::string flop_formula();

}  // namespace qfae::bench
