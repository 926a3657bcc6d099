// Hyper-parameters of the Q-Former bottleneck; defaults are the published model's
// (docs/model.md §2).
#pragma once
#include <cstdint>
#include <memory>

#include "qfae/model/sharded_dropout.h"

namespace qfae::model {

struct QFormerOptions {
  int64_t dim = 768;             // width D of the queries and of the projected encoder tokens
  int64_t queries = 784;         // Q, must equal (decoder grid side)^2
  int64_t depth = 1;             // blocks
  int64_t heads = 8;             // self-attention query heads (one shared key/value head)
  int64_t cross_heads = 8;       // cross-attention heads
  int64_t cross_head_dim = 64;   // cross-attention head width, whatever D
  double mlp_ratio = 4.0;        // MLP hidden width = mlp_ratio * D
  double dropout = 0.01;         // after the MLP
  double query_init_std = 1e-3;  // queries ~ N(0, std^2)
  bool causal = true;            // causal self-attention over the queries (reference default)
  bool residual = false;         // the reference's blocks have no residual connections
  bool cross_attn_every_block = false;  // false: cross-attention only in blocks 0, 2, 4, ...
  double layer_norm_eps = 1e-5;         // every LayerNorm of the Q-Former (checked by parity)
  // Data-parallel training's rows of the global batch, for the dropout masks (null: unsharded).
  std::shared_ptr<const BatchShard> batch_shard;
};

}  // namespace qfae::model
