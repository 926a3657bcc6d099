// Dropout masks drawn for the global batch, kept for this rank's rows.
#include "qfae/model/sharded_dropout.h"

namespace qfae::model {

ShardedDropoutImpl::ShardedDropoutImpl(double p, std::shared_ptr<const BatchShard> shard)
    : p_(p), shard_(std::move(shard)) {
  TORCH_CHECK(p >= 0 && p < 1, "ShardedDropout: p must be in [0, 1), got ", p);
}

torch::Tensor ShardedDropoutImpl::forward(const torch::Tensor& x) {
  if (!shard_ || shard_->global == 0 || !is_training() || p_ == 0) {
    return torch::dropout(x, p_, is_training());
  }
  TORCH_CHECK(shard_->offset >= 0 && shard_->offset + x.size(0) <= shard_->global,
              "ShardedDropout: rows ", shard_->offset, "..", shard_->offset + x.size(0),
              " are outside the global batch of ", shard_->global);
  // The steps of ATen's CPU dropout on the global batch's shape: a Bernoulli(1 - p) mask drawn
  // in one go, scaled by 1 / (1 - p).
  auto sizes = x.sizes().vec();
  sizes[0] = shard_->global;
  auto noise = torch::empty(sizes, x.options()).bernoulli_(1 - p_);
  noise = noise.narrow(0, shard_->offset, x.size(0)).div_(1 - p_);
  return x * noise;
}

}  // namespace qfae::model
