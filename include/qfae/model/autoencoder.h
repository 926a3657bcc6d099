// The trainable Q-Former autoencoder: per-encoder token projections, the Q-Former bottleneck
// (`junction`) and the pixel decoder, named as the reference's checkpoints
// (encoders.N.final_projection.*, junction.*, decoder.*). The frozen encoders live elsewhere.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "qfae/model/decoder.h"
#include "qfae/model/qformer.h"

// Legend: B batch, L_e tokens of encoder e, E_e its width, L = sum of L_e, D Q-Former width,
// Q queries = G*G, image side G*p.
namespace qfae::model {

struct AutoencoderOptions {
  std::vector<int64_t> encoder_dims = {1024};  // width of each encoder's fused tokens
  QFormerOptions qformer;
  DecoderOptions decoder;  // decoder.in_dim must equal qformer.dim
};

// One encoder's trainable part: Linear(E -> D, bias) on its fused tokens.
struct EncoderProjectionImpl : torch::nn::Module {
  EncoderProjectionImpl(int64_t encoder_dim, int64_t dim);
  torch::Tensor forward(const torch::Tensor& tokens);  // (B, L_e, E_e) -> (B, L_e, D)

  torch::nn::Linear final_projection_{nullptr};
};
TORCH_MODULE(EncoderProjection);

struct QFormerAutoencoderImpl : torch::nn::Module {
  // Throws qfae::UserError when the options do not fit together (Q != G*G, widths).
  explicit QFormerAutoencoderImpl(const AutoencoderOptions& options);

  // One (B, L_e, E_e) tensor per encoder -> projected tokens concatenated on the token axis
  // (B, L, D).
  torch::Tensor project(const std::vector<torch::Tensor>& encoder_tokens);
  // Projected tokens (B, L, D) -> Q-Former output (B, Q, D).
  torch::Tensor encode(const torch::Tensor& projected);
  // Q-Former output (B, Q, D) -> reconstruction (B, C, G*p, G*p).
  torch::Tensor decode(const torch::Tensor& queries);
  // project -> encode -> decode.
  torch::Tensor forward(const std::vector<torch::Tensor>& encoder_tokens);

  const AutoencoderOptions& options() const { return options_; }
  // Data-parallel training: this rank's rows of the global batch, so that dropout draws what a
  // single process would for them. BatchShard{} (the default) is a whole batch.
  void set_batch_shard(const BatchShard& shard) { *batch_shard_ = shard; }

  AutoencoderOptions options_;
  std::shared_ptr<BatchShard> batch_shard_ = std::make_shared<BatchShard>();
  torch::nn::ModuleList encoders_{nullptr};  // EncoderProjection per encoder
  QFormer junction_{nullptr};
  Decoder decoder_{nullptr};
};
TORCH_MODULE(QFormerAutoencoder);

// Number of scalars in the parameters of `module` that require a gradient.
int64_t count_trainable_parameters(const torch::nn::Module& module);

}  // namespace qfae::model
