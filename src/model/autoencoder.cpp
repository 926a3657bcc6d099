// The Q-Former autoencoder: projections -> Q-Former -> decoder, and a parameter count.
#include "qfae/model/autoencoder.h"

#include "qfae/util/error.h"

namespace qfae::model {

EncoderProjectionImpl::EncoderProjectionImpl(int64_t encoder_dim, int64_t dim) {
  final_projection_ = register_module("final_projection", torch::nn::Linear(encoder_dim, dim));
}

torch::Tensor EncoderProjectionImpl::forward(const torch::Tensor& tokens) {
  const auto width = final_projection_->options.in_features();
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(2) == width,
              "EncoderProjection: expected encoder tokens (B, L, ", width, "), got ",
              tokens.sizes());
  return final_projection_->forward(tokens);
}

QFormerAutoencoderImpl::QFormerAutoencoderImpl(const AutoencoderOptions& options)
    : options_(options) {
  const auto& q = options.qformer;
  const auto& d = options.decoder;
  if (q.queries != d.grid * d.grid) {
    throw UserError("QFormerAutoencoder: " + std::to_string(q.queries) +
                    " queries, but the decoder's " + std::to_string(d.grid) + " x " +
                    std::to_string(d.grid) + " token grid needs " +
                    std::to_string(d.grid * d.grid));
  }
  if (d.in_dim != q.dim) {
    throw UserError("QFormerAutoencoder: the decoder reads width " + std::to_string(d.in_dim) +
                    " but the Q-Former outputs width " + std::to_string(q.dim));
  }
  if (options.encoder_dims.empty()) {
    throw UserError("QFormerAutoencoder: at least one encoder is needed");
  }
  encoders_ = register_module("encoders", torch::nn::ModuleList());
  for (const auto width : options.encoder_dims) {
    if (width <= 0) {
      throw UserError("QFormerAutoencoder: encoder width " + std::to_string(width) +
                      " must be positive");
    }
    encoders_->push_back(EncoderProjection(width, q.dim));
  }
  auto sharded = q;
  sharded.batch_shard = batch_shard_;
  junction_ = register_module("junction", QFormer(sharded));
  decoder_ = register_module("decoder", Decoder(d));
}

torch::Tensor QFormerAutoencoderImpl::project(const std::vector<torch::Tensor>& encoder_tokens) {
  TORCH_CHECK(encoder_tokens.size() == encoders_->size(), "QFormerAutoencoder: expected tokens of ",
              encoders_->size(), " encoder(s), got ", encoder_tokens.size());
  std::vector<torch::Tensor> projected;
  for (size_t i = 0; i < encoder_tokens.size(); ++i) {
    projected.push_back(encoders_[i]->as<EncoderProjection>()->forward(encoder_tokens[i]));
  }
  return projected.size() == 1 ? projected[0] : torch::cat(projected, /*dim=*/1);  // (B, L, D)
}

torch::Tensor QFormerAutoencoderImpl::encode(const torch::Tensor& projected) {
  return junction_->forward(projected);
}

torch::Tensor QFormerAutoencoderImpl::decode(const torch::Tensor& queries) {
  return decoder_->forward(queries);
}

torch::Tensor QFormerAutoencoderImpl::forward(const std::vector<torch::Tensor>& encoder_tokens) {
  return decode(encode(project(encoder_tokens)));
}

int64_t count_trainable_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (p.requires_grad()) total += p.numel();
  }
  return total;
}

}  // namespace qfae::model
