// Analytic matrix-product FLOPs of the training and evaluation steps (2 m n k per product).
#include "qfae/bench/flops.h"

#include <algorithm>
#include <numeric>

#include "qfae/util/error.h"

namespace qfae::bench {
namespace {

double d(int64_t v) { return static_cast<double>(v); }

// Python-style taps (negative count from depth) -> blocks run = deepest tap + 1.
int64_t blocks_for_taps(const std::vector<int64_t>& taps, int64_t depth) {
  int64_t deepest = -1;
  for (const auto t : taps) deepest = std::max(deepest, t < 0 ? depth + t : t);
  return deepest + 1;
}

VitShape vit_from(const backbone::BackboneDescription& desc, int64_t patch, int64_t grid,
                  int64_t blocks) {
  VitShape v;
  v.prefix = desc.num_prefix;
  v.grid = grid;
  v.patch = patch;
  v.width = desc.width;
  v.mlp_hidden = 4 * desc.width;
  v.blocks = blocks;
  return v;
}

std::vector<VitShape> perceptual_shapes(const backbone::BackboneDescription& desc,
                                        const std::vector<int64_t>& patch_sizes,
                                        const std::vector<int64_t>& layers, int64_t image_size) {
  const int64_t blocks = *std::max_element(layers.begin(), layers.end()) + 1;
  std::vector<VitShape> out;
  for (const auto p : patch_sizes) out.push_back(vit_from(desc, p, image_size / p, blocks));
  return out;
}

// Multi-query self-attention over n tokens of width D with `heads` query heads of D / heads and
// one shared key/value head: Wqkv D -> D + 2 D/heads, q k^T and A v over all heads, out_proj.
MatmulFlops self_attention_flops(int64_t n, int64_t dim, int64_t heads) {
  MatmulFlops f;
  f.weights = 2.0 * d(n) * d(dim) * d(dim + 2 * (dim / heads)) + 2.0 * d(n) * d(dim) * d(dim);
  f.attention = 2.0 * (2.0 * d(n) * d(n) * d(dim));
  return f;
}

// Cross-attention of Q queries onto L tokens (plus the null key/value), inner width I.
MatmulFlops cross_attention_flops(int64_t q, int64_t l, int64_t dim, int64_t inner) {
  MatmulFlops f;
  f.weights = 2.0 * d(q) * d(dim) * d(inner)               // to_q
              + 2.0 * d(l) * d(dim) * d(2 * inner)         // to_kv
              + 2.0 * d(q) * d(inner) * d(dim);            // to_out
  f.attention = 2.0 * (2.0 * d(q) * d(l + 1) * d(inner));  // q k^T and A v
  return f;
}

double mlp_flops(int64_t n, int64_t dim, int64_t hidden) {
  return 2.0 * (2.0 * d(n) * d(dim) * d(hidden));
}

// The Q-Former minus the first block's query self-attention, per image.
MatmulFlops qformer_per_image(const ModelShapes& s) {
  const int64_t l = std::accumulate(s.encoder_tokens.begin(), s.encoder_tokens.end(), int64_t{0});
  MatmulFlops f;
  for (int64_t i = 0; i < s.qformer_depth; ++i) {
    if (i > 0) f += self_attention_flops(s.queries, s.dim, s.qformer_heads);
    if (s.cross_attn[static_cast<size_t>(i)]) {
      f += cross_attention_flops(s.queries, l, s.dim, s.cross_inner);
    }
    f.weights += mlp_flops(s.queries, s.dim, s.qformer_mlp_hidden);
  }
  return f;
}

MatmulFlops decoder_per_image(const ModelShapes& s) {
  MatmulFlops f;
  const int64_t n = s.decoder_tokens, dd = s.decoder_dim;
  f.weights = 2.0 * d(s.queries) * d(s.dim) * d(dd);  // decoder_embed
  for (int64_t i = 0; i < s.decoder_depth; ++i) {
    f.weights += 2.0 * d(n) * d(dd) * d(3 * dd) + 2.0 * d(n) * d(dd) * d(dd) +
                 mlp_flops(n, dd, s.decoder_mlp_hidden);
    f.attention += 2.0 * (2.0 * d(n) * d(n) * d(dd));
  }
  f.weights += 2.0 * d(n) * d(dd) * d(s.decoder_out);  // decoder_prediction, on every token
  return f;
}

double projection_per_image(const ModelShapes& s) {
  double f = 0;
  for (size_t e = 0; e < s.encoder_tokens.size(); ++e) {
    f += 2.0 * d(s.encoder_tokens[e]) * d(s.encoder_widths[e]) * d(s.dim);
  }
  return f;
}

MatmulFlops sum_vits(const std::vector<VitShape>& vits) {
  MatmulFlops f;
  for (const auto& v : vits) f += vit_flops(v);
  return f;
}

// The reconstruction's parts; `backward` false gives zero backward FLOPs everywhere.
void add_reconstruction(const ModelShapes& s, int64_t batch, bool backward, FlopCount& out) {
  const double b = d(batch);
  out.parts.push_back({"encoder", b * sum_vits(s.encoders).total(), 0.0});
  const double proj = b * projection_per_image(s);
  // The encoder tokens carry no gradient: only the weight gradient (1x).
  out.parts.push_back({"projection", proj, backward ? proj : 0.0});
  const auto sa = self_attention_flops(s.queries, s.dim, s.qformer_heads).total();
  out.parts.push_back({"qformer_query_self_attention", sa, backward ? 2 * sa : 0.0});
  const double qf = b * qformer_per_image(s).total();
  out.parts.push_back({"qformer", qf, backward ? 2 * qf : 0.0});
  const double dec = b * decoder_per_image(s).total();
  out.parts.push_back({"decoder", dec, backward ? 2 * dec : 0.0});
}

}  // namespace

MatmulFlops vit_flops(const VitShape& v) {
  const double n = d(v.tokens()), dim = d(v.width);
  MatmulFlops f;
  f.weights = 2.0 * d(v.grid * v.grid) * d(v.channels * v.patch * v.patch) * dim;  // patch embed
  f.weights += d(v.blocks) * (2.0 * n * dim * 3.0 * dim + 2.0 * n * dim * dim +
                              mlp_flops(v.tokens(), v.width, v.mlp_hidden));
  f.attention = d(v.blocks) * 2.0 * (2.0 * n * n * dim);
  return f;
}

ModelShapes model_shapes(const config::Config& c,
                         const std::vector<backbone::BackboneDescription>& encoders,
                         const backbone::BackboneDescription& perceptual) {
  ModelShapes s;
  const auto& taps = c.backbone.taps;
  for (const auto& e : encoders) {
    if (e.patch_sizes.empty() || e.grids.empty()) {
      throw UserError("backbone '" + e.model + "': its qfae.json lists no patch size");
    }
    const auto vit = vit_from(e, e.patch_sizes[0], e.grids[0], blocks_for_taps(taps, e.depth));
    s.encoders.push_back(vit);
    s.encoder_tokens.push_back(static_cast<int64_t>(taps.size()) * vit.tokens());
    s.encoder_widths.push_back(e.width);
  }
  const auto& m = c.model;
  s.dim = m.dim;
  s.queries = m.queries;
  s.qformer_depth = m.qformer_depth;
  s.qformer_heads = m.qformer_heads;
  s.cross_inner = m.cross_heads * m.cross_head_dim;
  for (int64_t i = 0; i < m.qformer_depth; ++i) {
    s.cross_attn.push_back(m.cross_attn_every_block || i % 2 == 0);
  }
  s.qformer_mlp_hidden = static_cast<int64_t>(m.qformer_mlp_ratio * d(m.dim));
  s.decoder_dim = m.decoder_dim;
  s.decoder_depth = m.decoder_depth;
  s.decoder_mlp_hidden = static_cast<int64_t>(m.decoder_mlp_ratio * d(m.decoder_dim));
  s.decoder_tokens = m.queries + m.decoder_registers + 1;
  s.decoder_out = m.decoder_patch * m.decoder_patch * 3;
  const auto size = c.data.image_size;
  s.perceptual_train = perceptual_shapes(perceptual, c.loss.patch_sizes, c.loss.layers, size);
  s.perceptual_eval = perceptual_shapes(perceptual, c.eval.patch_sizes, c.eval.layers, size);
  return s;
}

double FlopCount::forward() const {
  double f = 0;
  for (const auto& p : parts) f += p.forward;
  return f;
}

double FlopCount::backward() const {
  double f = 0;
  for (const auto& p : parts) f += p.backward;
  return f;
}

FlopCount train_step_flops(const ModelShapes& s, int64_t batch) {
  FlopCount out;
  out.batch = batch;
  add_reconstruction(s, batch, /*backward=*/true, out);
  const double b = d(batch);
  const auto mae = sum_vits(s.perceptual_train);
  out.parts.push_back({"perceptual_x", b * mae.total(), 0.0});
  // Through x_hat: input gradients only (1x the weight products), 2x the attention products.
  out.parts.push_back({"perceptual_xhat", b * mae.total(), b * (mae.weights + 2 * mae.attention)});
  return out;
}

FlopCount eval_step_flops(const ModelShapes& s, int64_t batch) {
  FlopCount out;
  out.batch = batch;
  add_reconstruction(s, batch, /*backward=*/false, out);
  const double b = d(batch);
  const auto mae = sum_vits(s.perceptual_eval).total();
  out.parts.push_back({"perceptual_x", b * mae, 0.0});
  out.parts.push_back({"perceptual_xhat", b * mae, 0.0});
  return out;
}

std::string flop_formula() {
  return "FLOPs count matrix products only, 2*m*n*k each (attention included, causal masks\n"
         "counted in full; norms, softmax, GELU, upsampling, cosine and Adam left out).\n"
         "ViT forward per image: 2*g^2*(3p^2)*D + blocks*(8*N*D^2 + 4*N*D*M + 4*N^2*D), N = "
         "prefix+g^2.\n"
         "Train step = B*[enc + proj + qformer + decoder + 2*MAE(train sizes)] + query self-attn\n"
         "  forward, + backward: 2x (qformer, decoder, self-attn), 1x proj (weight grad only),\n"
         "  MAE on x_hat: 1x its weight products + 2x its attention products (input grads only).\n"
         "Eval step = B*[enc + proj + qformer + decoder + 2*MAE(eval sizes)], no backward.\n"
         "Utilisation = FLOPs per step / median step time / peak (--peak-tflops).";
}

}  // namespace qfae::bench
