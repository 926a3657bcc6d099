// ShardedDropout: a rank's rows of the global batch get the mask torch::dropout draws for them.
#include "qfae/model/sharded_dropout.h"

#include <gtest/gtest.h>

using qfae::model::BatchShard;
using qfae::model::ShardedDropout;

TEST(ShardedDropout, ARanksRowsGetTheMaskOneProcessDrawsForThem) {
  const double p = 0.3;
  const auto global = torch::randn({6, 5, 4});
  torch::manual_seed(11);
  const auto expected = torch::dropout(global, p, /*train=*/true);  // the single-process draw
  auto shard = std::make_shared<BatchShard>();
  ShardedDropout dropout(p, shard);
  dropout->train();
  for (int64_t offset : {0, 2, 4}) {
    *shard = BatchShard{offset, 6};
    torch::manual_seed(11);
    const auto got = dropout->forward(global.narrow(0, offset, 2));
    EXPECT_TRUE(torch::equal(got, expected.narrow(0, offset, 2))) << "offset " << offset;
  }
}

TEST(ShardedDropout, WithoutAShardItIsTorchDropoutAndEvalIsIdentity) {
  const auto x = torch::randn({3, 7});
  torch::manual_seed(5);
  const auto expected = torch::dropout(x, 0.5, true);
  ShardedDropout dropout(0.5, std::make_shared<BatchShard>());
  dropout->train();
  torch::manual_seed(5);
  EXPECT_TRUE(torch::equal(dropout->forward(x), expected));
  dropout->eval();
  EXPECT_TRUE(torch::equal(dropout->forward(x), x));
}
