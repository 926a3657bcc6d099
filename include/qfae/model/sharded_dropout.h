// Dropout that gives a data-parallel rank the mask a single process would draw for the same rows
// of the global batch: it draws the global batch's mask from the (per-step seeded) generator and
// keeps its own rows. Without a shard it is torch::nn::Dropout, draw for draw.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace qfae::model {

// Where this process's batch lies in the global batch of a data-parallel step.
struct BatchShard {
  int64_t offset = 0;  // first row of this rank's batch in the global batch
  int64_t global = 0;  // global batch size; 0: not sharded (the batch is the whole batch)
};

class ShardedDropoutImpl : public torch::nn::Cloneable<ShardedDropoutImpl> {
 public:
  // `shard` is shared with the model that sets it (QFormerAutoencoder::set_batch_shard).
  ShardedDropoutImpl(double p, std::shared_ptr<const BatchShard> shard);
  void reset() override {}
  // x (B, ...) with B this rank's rows -> x with dropout in training mode.
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double p_;
  std::shared_ptr<const BatchShard> shard_;
};
TORCH_MODULE(ShardedDropout);

}  // namespace qfae::model
