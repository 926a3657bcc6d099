// Decoder: the 2-D sin-cos embedding against hand-computed values, unpatchify ordering on a
// hand-built tensor, output shapes, and the fixed embedding being a buffer, not a parameter.
#include "qfae/model/decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "qfae/io/state_dict.h"
#include "qfae/model/pos_embed.h"
#include "qfae/util/cpu_features.h"
#include "qfae/util/torch_compat.h"

using qfae::model::Decoder;
using qfae::model::DecoderOptions;

TEST(DecoderTest, SinCosEmbeddingMatchesHandComputedValues) {
  const int64_t dim = 16, grid = 5, quarter = dim / 4;
  const auto emb = qfae::model::sincos_pos_embed_2d(dim, grid);
  ASSERT_EQ(emb.sizes(), torch::IntArrayRef({grid * grid, dim}));
  for (const auto& [row, col] : std::vector<std::pair<int, int>>{{0, 0}, {1, 3}, {4, 2}, {3, 4}}) {
    const auto token = emb[row * grid + col];
    for (int64_t i = 0; i < quarter; ++i) {
      const double omega = 1.0 / std::pow(10000.0, double(i) / double(quarter));
      const std::vector<std::pair<int64_t, double>> expected = {
          {i, std::sin(col * omega)},
          {quarter + i, std::cos(col * omega)},
          {2 * quarter + i, std::sin(row * omega)},
          {3 * quarter + i, std::cos(row * omega)}};
      for (const auto& [channel, value] : expected) {
        EXPECT_NEAR(token[channel].item<float>(), value, 1e-6)
            << "row " << row << " col " << col << " channel " << channel;
      }
    }
  }
}

TEST(DecoderTest, UnpatchifyOrdersRowColumnChannelWithinEachPatch) {
  const int64_t b = 2, g = 3, p = 2, c = 3;
  // Encode (batch, token, row in patch, col in patch, channel) in each value.
  auto patches = torch::empty({b, g * g, p * p * c});
  for (int64_t n = 0; n < b; ++n)
    for (int64_t t = 0; t < g * g; ++t)
      for (int64_t r = 0; r < p; ++r)
        for (int64_t q = 0; q < p; ++q)
          for (int64_t ch = 0; ch < c; ++ch)
            patches[n][t][(r * p + q) * c + ch] =
                float(n * 10000 + t * 100 + r * 10 + q + ch * 0.1);
  const auto image = qfae::model::unpatchify(patches, p, c);
  ASSERT_EQ(image.sizes(), torch::IntArrayRef({b, c, g * p, g * p}));
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < g * p; ++y)
        for (int64_t x = 0; x < g * p; ++x) {
          const int64_t token = (y / p) * g + x / p;
          const float expected = float(n * 10000 + token * 100 + (y % p) * 10 + x % p + ch * 0.1);
          ASSERT_FLOAT_EQ(image[n][ch][y][x].item<float>(), expected)
              << "n " << n << " c " << ch << " y " << y << " x " << x;
        }
}

TEST(DecoderTest, OutputShapesAndPositionEmbeddingIsAFixedBuffer) {
  torch::manual_seed(0);
  for (const auto& [in_dim, dim, grid, patch] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {16, 16, 2, 4}, {32, 24, 3, 8}, {24, 32, 4, 2}}) {
    DecoderOptions o;
    o.in_dim = in_dim;
    o.dim = dim;
    o.depth = 2;
    o.heads = 4;
    o.grid = grid;
    o.patch = patch;
    Decoder decoder(o);
    const auto image = decoder->forward(torch::randn({2, grid * grid, in_dim}));
    EXPECT_EQ(image.sizes(), torch::IntArrayRef({2, 3, grid * patch, grid * patch}));
    EXPECT_EQ(decoder->named_parameters().find("decoder_pos_embed"), nullptr);
    EXPECT_NE(decoder->named_buffers().find("decoder_pos_embed"), nullptr);
    EXPECT_TRUE(
        torch::equal(decoder->decoder_pos_embed_[0], qfae::model::sincos_pos_embed_2d(dim, grid)));
    const auto state = qfae::io::module_state(*decoder);
    EXPECT_EQ(state.at("reg_tokens").sizes(), torch::IntArrayRef({1, 4, dim}));
    EXPECT_EQ(state.at("decoder_blocks.1.attn.qkv.weight").sizes(),
              torch::IntArrayRef({3 * dim, dim}));
    EXPECT_EQ(state.at("decoder_prediction.weight").sizes(),
              torch::IntArrayRef({patch * patch * 3, dim}));
  }
}

TEST(DecoderTest, WrongTokenCountIsRejected) {
  DecoderOptions o;
  o.in_dim = o.dim = 16;
  o.depth = 1;
  o.heads = 2;
  o.grid = 3;
  o.patch = 2;
  Decoder decoder(o);
  EXPECT_THROW(decoder->forward(torch::randn({1, 8, 16})), c10::Error);
}

namespace {

// Names of the autograd nodes behind `t` (breadth-first over the whole graph).
std::vector<std::string> graph_node_names(const torch::Tensor& t) {
  std::vector<std::string> names;
  std::vector<std::shared_ptr<torch::autograd::Node>> todo{t.grad_fn()};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    auto node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node.get()).second) continue;
    names.push_back(node->name());
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function);
  }
  return names;
}

int count_checkpoints(const torch::Tensor& t) {
  int n = 0;
  for (const auto& name : graph_node_names(t)) n += name.find("CheckpointedBlock") != name.npos;
  return n;
}

// A plain decoder and one whose first two blocks are checkpointed, with the same weights.
std::pair<Decoder, Decoder> plain_and_checkpointed(int64_t depth) {
  DecoderOptions o;
  o.in_dim = 16;
  o.dim = 32;
  o.depth = depth;
  o.heads = 4;
  o.grid = 4;
  o.patch = 2;
  o.registers = 2;
  torch::manual_seed(0);
  Decoder plain(o);
  o.checkpoint_blocks = 2;
  Decoder recomputed(o);
  torch::NoGradGuard no_grad;
  const auto from = plain->named_parameters();
  for (auto& p : recomputed->named_parameters()) p.value().copy_(from[p.key()]);
  return {plain, recomputed};
}

}  // namespace

// model.decoder_checkpoint: the first N blocks recompute their activations in backward. Same
// output, same gradients for the tokens and every parameter (float64), and only in training.
TEST(DecoderTest, CheckpointedBlocksGiveTheSameOutputAndGradients) {
  auto [plain, recomputed] = plain_and_checkpointed(/*depth=*/3);
  plain->to(torch::kFloat64);
  recomputed->to(torch::kFloat64);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto tokens = torch::randn({2, 16, 16}, opts);
  const auto weight = torch::randn({2, 3, 8, 8}, opts);

  auto run = [&](Decoder& d) {
    auto x = tokens.clone().requires_grad_(true);
    const auto out = d->forward(x);
    (out * weight).sum().backward();
    return std::make_pair(out.detach(), x.grad());
  };
  const auto [out_a, grad_a] = run(plain);
  const auto [out_b, grad_b] = run(recomputed);
  EXPECT_TRUE(torch::equal(out_a, out_b));
  EXPECT_TRUE(torch::allclose(grad_a, grad_b, 1e-12, 1e-12));
  const auto grads = plain->named_parameters();
  int compared = 0;
  for (const auto& p : recomputed->named_parameters()) {
    SCOPED_TRACE(p.key());
    ASSERT_TRUE(p.value().grad().defined());
    EXPECT_TRUE(torch::allclose(p.value().grad(), grads[p.key()].grad(), 1e-12, 1e-12));
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0);
    ++compared;
  }
  EXPECT_GT(compared, 20);

  // Two checkpointed blocks in the graph; none without the option, in eval mode or without grad.
  const auto x = tokens.clone().requires_grad_(true);
  EXPECT_EQ(count_checkpoints(recomputed->forward(x)), 2);
  EXPECT_EQ(count_checkpoints(plain->forward(x)), 0);
  recomputed->eval();
  EXPECT_EQ(count_checkpoints(recomputed->forward(x)), 0);
}

// Under bf16 autocast (here on the CPU, where it has bf16 units) the checkpointed blocks recompute
// their activations in backward, which runs outside autocast, under the forward's autocast: the
// gradients equal the plain decoder's.
// A recomputation in float32 would be off by bf16's rounding, which the last check shows is
// far above the tolerance.
TEST(DecoderTest, CheckpointedBlocksRecomputeUnderTheForwardsAutocast) {
  if (!qfae::cpu_bf16_support().supported) GTEST_SKIP() << "this CPU has no bf16 units";
  auto [plain, recomputed] = plain_and_checkpointed(/*depth=*/2);
  const auto tokens = torch::randn({2, 16, 16});
  const auto weight = torch::randn({2, 3, 8, 8});
  auto input_grad = [&](Decoder& d, bool autocast) {
    auto x = tokens.clone().requires_grad_(true);
    torch::Tensor loss;
    {
      qfae::compat::Bf16Autocast scope(torch::kCPU, autocast);
      loss = (d->forward(x).to(torch::kFloat32) * weight).sum();
    }
    loss.backward();  // outside autocast, as in training
    return x.grad();
  };
  const auto plain_grad = input_grad(plain, true);
  const auto recomputed_grad = input_grad(recomputed, true);
  const double scale = plain_grad.abs().max().item<double>();
  EXPECT_LE((recomputed_grad - plain_grad).abs().max().item<double>(), 1e-5 * scale);
  const auto fp32_grad = input_grad(plain, false);
  EXPECT_GT((fp32_grad - plain_grad).abs().max().item<double>(), 1e-3 * scale)
      << "bf16 autocast should round the gradients visibly";
}
