// Q-Former: output shapes for several widths, causal query self-attention (and the switch that
// turns it off), which blocks carry cross-attention, the residual option, and the first block's
// self-attention computed once per step (equal to the batched path, values and gradients).
#include "qfae/model/qformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "qfae/io/state_dict.h"
#include "qfae/util/torch_compat.h"
#include "../support/test_device.h"

using qfae::model::QFormer;
using qfae::model::QFormerOptions;

namespace {

QFormerOptions tiny(int64_t dim, int64_t queries, int64_t heads) {
  QFormerOptions o;
  o.dim = dim;
  o.queries = queries;
  o.heads = heads;
  o.cross_heads = 2;
  o.cross_head_dim = 8;
  return o;
}

// Q-Former outputs before and after adding `delta` to query j (eval mode, so no dropout).
std::pair<torch::Tensor, torch::Tensor> perturb_query(QFormer& qformer, int64_t j) {
  qformer->eval();
  torch::NoGradGuard no_grad;
  const auto context = torch::randn({2, 5, qformer->options().dim});
  auto before = qformer->forward(context);
  qformer->queries_[0][j] += 0.5;
  auto after = qformer->forward(context);
  return {before, after};
}

}  // namespace

TEST(QFormerTest, OutputShapesForSeveralWidths) {
  torch::manual_seed(0);
  for (const auto& [dim, queries, heads, tokens] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {16, 4, 2, 7}, {32, 9, 4, 3}, {48, 16, 8, 21}}) {
    QFormer qformer(tiny(dim, queries, heads));
    const auto out = qformer->forward(torch::randn({3, tokens, dim}));
    EXPECT_EQ(out.sizes(), torch::IntArrayRef({3, queries, dim})) << "dim " << dim;
  }
}

TEST(QFormerTest, WrongContextWidthIsRejected) {
  QFormer qformer(tiny(16, 4, 2));
  EXPECT_THROW(qformer->forward(torch::randn({1, 5, 12})), c10::Error);
}

TEST(QFormerTest, SelfAttentionIsCausalByDefault) {
  torch::manual_seed(1);
  QFormer qformer(tiny(16, 6, 4));
  const int64_t j = 3;
  const auto [before, after] = perturb_query(qformer, j);
  // Queries before j cannot see query j: unchanged to the last bit.
  EXPECT_TRUE(torch::equal(before.slice(1, 0, j), after.slice(1, 0, j)));
  // Query j and the ones after it do see the change.
  for (int64_t i = j; i < 6; ++i) {
    EXPECT_GT((before.select(1, i) - after.select(1, i)).abs().max().item<float>(), 1e-6)
        << "query " << i;
  }
}

TEST(QFormerTest, NonCausalOptionLetsEarlierQueriesSeeLaterOnes) {
  torch::manual_seed(1);
  auto options = tiny(16, 6, 4);
  options.causal = false;
  QFormer qformer(options);
  const auto [before, after] = perturb_query(qformer, 3);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_GT((before.select(1, i) - after.select(1, i)).abs().max().item<float>(), 1e-6)
        << "query " << i;
  }
}

TEST(QFormerTest, CrossAttentionOnlyInEvenBlocksUnlessAskedForEveryBlock) {
  auto options = tiny(16, 4, 2);
  options.depth = 3;
  QFormer reference_like(options);
  std::set<std::string> names;
  for (const auto& [name, t] : qfae::io::module_state(*reference_like)) names.insert(name);
  EXPECT_TRUE(names.count("blocks.0.cross_attn.null_kv"));
  EXPECT_FALSE(names.count("blocks.1.cross_attn.null_kv"));
  EXPECT_TRUE(names.count("blocks.2.cross_attn.null_kv"));
  EXPECT_TRUE(names.count("blocks.1.attn.Wqkv.weight"));
  // Odd blocks skip cross-attention properly: the stack still runs.
  EXPECT_EQ(reference_like->forward(torch::randn({2, 5, 16})).sizes(),
            torch::IntArrayRef({2, 4, 16}));

  options.cross_attn_every_block = true;
  QFormer every(options);
  EXPECT_TRUE(every->blocks_[1]->as<qfae::model::QFormerBlock>()->has_cross_attn());
}

TEST(QFormerTest, ParameterShapesFollowTheReference) {
  QFormer qformer(tiny(32, 4, 4));  // head width 8, cross 2 heads x 8
  const auto state = qfae::io::module_state(*qformer);
  EXPECT_EQ(state.at("queries").sizes(), torch::IntArrayRef({1, 4, 32}));
  EXPECT_EQ(state.at("blocks.0.attn.Wqkv.weight").sizes(), torch::IntArrayRef({32 + 2 * 8, 32}));
  EXPECT_EQ(state.at("blocks.0.cross_attn.to_kv.weight").sizes(), torch::IntArrayRef({32, 32}));
  EXPECT_EQ(state.at("blocks.0.cross_attn.to_out.0.weight").sizes(), torch::IntArrayRef({32, 16}));
  EXPECT_EQ(state.at("blocks.0.projection.3.weight").sizes(), torch::IntArrayRef({32, 128}));
  EXPECT_EQ(state.count("blocks.0.cross_attn.to_q.bias"), 0u);
  EXPECT_EQ(state.count("blocks.0.cross_attn.to_out.0.bias"), 0u);
  // Queries start tiny (std 1e-3).
  EXPECT_LT(qformer->queries_.abs().max().item<float>(), 1e-2);
}

TEST(QFormerTest, ResidualOptionAddsTheInput) {
  torch::manual_seed(2);
  auto options = tiny(16, 4, 2);
  QFormer plain(options);
  options.residual = true;
  QFormer residual(options);
  torch::NoGradGuard no_grad;
  auto source = plain->named_parameters();
  for (auto& item : residual->named_parameters()) item.value().copy_(source[item.key()]);
  plain->eval();
  residual->eval();
  const auto context = torch::randn({1, 5, 16});
  EXPECT_FALSE(torch::allclose(plain->forward(context), residual->forward(context)));
}

namespace {

// The Q-Former as it ran before the first block's self-attention was shared: queries tiled over
// the batch first, every block on (B, Q, D).
torch::Tensor batched_forward(QFormer& qformer, const torch::Tensor& context) {
  auto x = qformer->queries_.expand({context.size(0), -1, -1});
  for (const auto& block : *qformer->blocks_) {
    x = block->as<qfae::model::QFormerBlock>()->forward(x, context);
  }
  return x;
}

// Output and every gradient (parameters and context) of sum(out * weights), in train mode with
// the dropout draws fixed by `seed`.
std::vector<torch::Tensor> output_and_grads(QFormer& qformer, const torch::Tensor& context,
                                            const torch::Tensor& weights, bool batched) {
  qformer->train();
  qformer->zero_grad();
  auto ctx = context.detach().clone().requires_grad_(true);
  torch::manual_seed(11);
  const auto out = batched ? batched_forward(qformer, ctx) : qformer->forward(ctx);
  (out * weights).sum().backward();
  std::vector<torch::Tensor> result = {out.detach().clone(), ctx.grad().clone()};
  for (const auto& p : qformer->parameters()) result.push_back(p.grad().clone());
  return result;
}

}  // namespace

TEST(QFormerTest, QuerySelfAttentionOncePerStepEqualsTheBatchedPath) {
  const auto device = qfae::test::test_device();
  for (const bool residual : {false, true}) {
    for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::manual_seed(5);
      auto options = tiny(16, 6, 4);
      options.depth = 3;  // blocks 0 and 2 with cross-attention, block 1 without
      options.residual = residual;
      options.dropout = 0.2;
      QFormer qformer(options);
      qformer->to(device, dtype);
      const auto opts = torch::TensorOptions().device(device).dtype(dtype);
      const auto context = torch::randn({4, 5, 16}, opts);
      const auto weights = torch::randn({4, 6, 16}, opts);
      const auto once = output_and_grads(qformer, context, weights, /*batched=*/false);
      const auto batched = output_and_grads(qformer, context, weights, /*batched=*/true);
      ASSERT_EQ(once.size(), batched.size());
      // Only the order of the float additions differs (expand's backward sums over the batch).
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-5;
      for (size_t i = 0; i < once.size(); ++i) {
        const auto a = once[i].to(torch::kCPU, torch::kFloat64);
        const auto b = batched[i].to(torch::kCPU, torch::kFloat64);
        const double scale = std::max(b.abs().max().item<double>(), 1e-30);
        EXPECT_LE((a - b).abs().max().item<double>() / scale, tol)
            << "tensor " << i << " (0 output, 1 context grad, then parameters), residual "
            << residual << ", dtype " << dtype;
      }
    }
  }
}

TEST(QFormerTest, DeviceMatchesCpuInFloat32AndBf16Autocast) {
  const auto device = qfae::test::test_device();
  if (!device.is_cuda()) GTEST_SKIP() << "QFAE_TEST_DEVICE is not a CUDA device";
  torch::manual_seed(6);
  QFormer cpu(tiny(64, 16, 4));
  cpu->eval();
  QFormer gpu(tiny(64, 16, 4));
  {
    torch::NoGradGuard no_grad;
    auto source = cpu->named_parameters();
    for (auto& item : gpu->named_parameters()) item.value().copy_(source[item.key()]);
  }
  gpu->to(device);
  gpu->eval();
  torch::NoGradGuard no_grad;
  const auto context = torch::randn({3, 9, 64});
  const auto want = cpu->forward(context);
  const auto rel = [&](const torch::Tensor& got) {
    return (got.to(torch::kCPU, torch::kFloat32) - want).abs().max().item<double>() /
           want.abs().max().item<double>();
  };
  EXPECT_LE(rel(gpu->forward(context.to(device))), 1e-4) << "float32 on " << device;
  qfae::compat::CudaBf16Autocast autocast(true);
  EXPECT_LE(rel(gpu->forward(context.to(device))), 2e-2) << "bf16 autocast on " << device;
}
