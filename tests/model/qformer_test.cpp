// Q-Former: output shapes for several widths, causal query self-attention (and the switch that
// turns it off), which blocks carry cross-attention, and the residual option.
#include "qfae/model/qformer.h"

#include <gtest/gtest.h>

#include <set>

#include "qfae/io/state_dict.h"

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
