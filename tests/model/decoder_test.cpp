// Decoder: the 2-D sin-cos embedding against hand-computed values, unpatchify ordering on a
// hand-built tensor, output shapes, and the fixed embedding being a buffer, not a parameter.
#include "qfae/model/decoder.h"

#include <gtest/gtest.h>

#include <cmath>

#include "qfae/io/state_dict.h"
#include "qfae/model/pos_embed.h"

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
