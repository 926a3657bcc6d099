// Q-Former: output shapes for several widths, causal query self-attention (and the switch that
// turns it off), which blocks carry cross-attention, the forward against docs/model.md §2 written
// out in torch ops (with and without the residual option), and the first block's self-attention
// computed once per step (equal to the batched path, values and gradients).
#include "qfae/model/qformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "qfae/io/state_dict.h"
#include "qfae/util/torch_compat.h"
#include "../support/test_device.h"

using qfae::model::QFormer;
using qfae::model::QFormerOptions;

namespace {

QFormerOptions tiny_qformer_options(int64_t dim, int64_t queries, int64_t heads) {
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
    QFormer qformer(tiny_qformer_options(dim, queries, heads));
    const auto out = qformer->forward(torch::randn({3, tokens, dim}));
    EXPECT_EQ(out.sizes(), torch::IntArrayRef({3, queries, dim})) << "dim " << dim;
  }
}

TEST(QFormerTest, WrongContextWidthIsRejected) {
  QFormer qformer(tiny_qformer_options(16, 4, 2));
  EXPECT_THROW(qformer->forward(torch::randn({1, 5, 12})), c10::Error);
}

TEST(QFormerTest, SelfAttentionIsCausalByDefault) {
  torch::manual_seed(1);
  QFormer qformer(tiny_qformer_options(16, 6, 4));
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
  auto options = tiny_qformer_options(16, 6, 4);
  options.causal = false;
  QFormer qformer(options);
  const auto [before, after] = perturb_query(qformer, 3);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_GT((before.select(1, i) - after.select(1, i)).abs().max().item<float>(), 1e-6)
        << "query " << i;
  }
}

TEST(QFormerTest, CrossAttentionOnlyInEvenBlocksUnlessAskedForEveryBlock) {
  auto options = tiny_qformer_options(16, 4, 2);
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
  QFormer qformer(tiny_qformer_options(32, 4, 4));  // head width 8, cross 2 heads x 8
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

namespace {

// docs/model.md §2 written out with plain torch ops on a Q-Former's own parameters (found by the
// reference's names), in eval mode (dropout off). With `residual`, each of the three steps adds
// its input to its output: x = x + f(x), as the option promises; without, x = f(x).
torch::Tensor qformer_written_out(QFormer& qformer, const torch::Tensor& context, bool residual) {
  const auto p = qformer->named_parameters();
  const auto& o = qformer->options();
  const int64_t b = context.size(0), l = context.size(1), nq = o.queries, d = o.dim;
  const int64_t h = o.heads, hd = d / h, ch = o.cross_heads, cd = o.cross_head_dim;
  const auto norm = [&](const torch::Tensor& t, const std::string& name) {
    return torch::layer_norm(t, {d}, p[name + ".weight"], p[name + ".bias"], o.layer_norm_eps);
  };
  const auto attend = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& mask) {
    auto s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
    if (mask.defined()) s = s.masked_fill(mask, -std::numeric_limits<double>::infinity());
    return torch::matmul(s.softmax(-1), v);
  };
  const auto causal = o.causal ? torch::ones({nq, nq}, torch::kBool).triu(1) : torch::Tensor();
  auto x = p["queries"].expand({b, nq, d});
  for (int64_t i = 0; i < o.depth; ++i) {
    const std::string n = "blocks." + std::to_string(i) + ".";
    // 1. Multi-query self-attention: h query heads, one key/value head of width d / h.
    const auto qkv = torch::linear(x, p[n + "attn.Wqkv.weight"], p[n + "attn.Wqkv.bias"]);
    const auto q = qkv.slice(2, 0, d).reshape({b, nq, h, hd}).transpose(1, 2);  // (B, h, Q, hd)
    const auto k = qkv.slice(2, d, d + hd).unsqueeze(1);                        // (B, 1, Q, hd)
    const auto v = qkv.slice(2, d + hd, d + 2 * hd).unsqueeze(1);
    auto a = attend(q, k, v, causal).transpose(1, 2).reshape({b, nq, d});
    a = torch::linear(a, p[n + "attn.out_proj.weight"], p[n + "attn.out_proj.bias"]);
    x = residual ? x + a : a;
    // 2. Cross-attention onto the context with a null key/value, where the block has it.
    if (p.contains(n + "cross_attn.null_kv")) {
      const auto cq = torch::linear(norm(x, n + "cross_attn.norm"), p[n + "cross_attn.to_q.weight"])
                          .reshape({b, nq, ch, cd})
                          .transpose(1, 2);  // (B, ch, Q, cd)
      const auto kv = torch::linear(context, p[n + "cross_attn.to_kv.weight"]);
      const auto null_kv = p[n + "cross_attn.null_kv"];
      const auto ck = torch::cat({null_kv[0].expand({b, ch, 1, cd}),
                                  kv.slice(2, 0, ch * cd).reshape({b, l, ch, cd}).transpose(1, 2)},
                                 2);  // (B, ch, 1 + L, cd)
      const auto cv =
          torch::cat({null_kv[1].expand({b, ch, 1, cd}),
                      kv.slice(2, ch * cd, 2 * ch * cd).reshape({b, l, ch, cd}).transpose(1, 2)},
                     2);
      auto c = attend(cq, ck, cv, torch::Tensor()).transpose(1, 2).reshape({b, nq, ch * cd});
      c = norm(torch::linear(c, p[n + "cross_attn.to_out.0.weight"]), n + "cross_attn.to_out.1");
      x = residual ? x + c : c;
    }
    // 3. MLP: LayerNorm, Linear, exact GELU, Linear (its dropout is off in eval mode).
    auto m = torch::linear(norm(x, n + "projection.0"), p[n + "projection.1.weight"],
                           p[n + "projection.1.bias"]);
    m = torch::linear(torch::gelu(m), p[n + "projection.3.weight"], p[n + "projection.3.bias"]);
    x = residual ? x + m : m;
  }
  return x;
}

}  // namespace

TEST(QFormerTest, ResidualOptionAddsEachStepsInputToItsOutput) {
  torch::manual_seed(2);
  auto options = tiny_qformer_options(16, 4, 2);
  options.depth = 2;  // block 0 with cross-attention, block 1 without
  QFormer plain(options);
  options.residual = true;
  QFormer residual(options);
  torch::NoGradGuard no_grad;
  plain->queries_.normal_();  // queries of unit size, so that the input terms weigh
  auto source = plain->named_parameters();
  for (auto& item : residual->named_parameters()) item.value().copy_(source[item.key()]);
  plain->to(torch::kFloat64);
  residual->to(torch::kFloat64);
  plain->eval();
  residual->eval();
  const auto context = torch::randn({3, 5, 16}, torch::kFloat64);
  const auto want_residual = qformer_written_out(residual, context, /*residual=*/true);
  const auto want_plain = qformer_written_out(plain, context, /*residual=*/false);
  const auto rel = [](const torch::Tensor& got, const torch::Tensor& want) {
    return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
  };
  EXPECT_LE(rel(residual->forward(context), want_residual), 1e-12);
  EXPECT_LE(rel(plain->forward(context), want_plain), 1e-12);
  // The two written-out models differ far beyond that tolerance: the check tells them apart.
  EXPECT_GT(rel(want_plain, want_residual), 1e-2);
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
      auto options = tiny_qformer_options(16, 6, 4);
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
  QFormer cpu(tiny_qformer_options(64, 16, 4));
  cpu->eval();
  QFormer gpu(tiny_qformer_options(64, 16, 4));
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
  qfae::compat::Bf16Autocast autocast(device.type(), true);
  EXPECT_LE(rel(gpu->forward(context.to(device))), 2e-2) << "bf16 autocast on " << device;
}
