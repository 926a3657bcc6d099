// Q-Former autoencoder: end-to-end shapes with one and two encoders, option errors, and the
// brain-configuration parameter names, shapes and trainable count against the reference's keys.
#include "qfae/model/autoencoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qfae/io/state_dict.h"
#include "qfae/util/error.h"

using qfae::model::AutoencoderOptions;
using qfae::model::QFormerAutoencoder;

namespace {

AutoencoderOptions tiny_autoencoder_options(std::vector<int64_t> encoder_dims) {
  AutoencoderOptions o;
  o.encoder_dims = std::move(encoder_dims);
  o.qformer.dim = 16;
  o.qformer.queries = 9;
  o.qformer.heads = 2;
  o.qformer.cross_heads = 2;
  o.qformer.cross_head_dim = 8;
  o.decoder.in_dim = 16;
  o.decoder.dim = 16;
  o.decoder.depth = 1;
  o.decoder.heads = 2;
  o.decoder.grid = 3;
  o.decoder.patch = 4;
  return o;
}

}  // namespace

TEST(ModelAutoencoderTest, OneEncoderEndToEndShapes) {
  torch::manual_seed(0);
  QFormerAutoencoder model(tiny_autoencoder_options({24}));
  const std::vector<torch::Tensor> tokens = {torch::randn({2, 10, 24})};
  EXPECT_EQ(model->project(tokens).sizes(), torch::IntArrayRef({2, 10, 16}));
  EXPECT_EQ(model->encode(model->project(tokens)).sizes(), torch::IntArrayRef({2, 9, 16}));
  EXPECT_EQ(model->forward(tokens).sizes(), torch::IntArrayRef({2, 3, 12, 12}));
}

TEST(ModelAutoencoderTest, SeveralEncodersAreProjectedSeparatelyAndConcatenated) {
  torch::manual_seed(0);
  QFormerAutoencoder model(tiny_autoencoder_options({24, 40}));
  const std::vector<torch::Tensor> tokens = {torch::randn({2, 10, 24}), torch::randn({2, 6, 40})};
  const auto projected = model->project(tokens);
  ASSERT_EQ(projected.sizes(), torch::IntArrayRef({2, 16, 16}));
  auto second = model->encoders_[1]->as<qfae::model::EncoderProjection>()->forward(tokens[1]);
  EXPECT_TRUE(torch::allclose(projected.slice(1, 10), second));
  const auto state = qfae::io::module_state(*model);
  EXPECT_EQ(state.at("encoders.1.final_projection.weight").sizes(), torch::IntArrayRef({16, 40}));
  EXPECT_EQ(model->forward(tokens).sizes(), torch::IntArrayRef({2, 3, 12, 12}));
  EXPECT_THROW(model->project({tokens[0]}), c10::Error);
}

TEST(ModelAutoencoderTest, QueriesMustFillTheDecoderGrid) {
  auto options = tiny_autoencoder_options({24});
  options.qformer.queries = 10;
  try {
    QFormerAutoencoder model(options);
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    // The fact; config validation names the key (model.queries) before a model is built.
    EXPECT_NE(std::string(e.what()).find("10 queries"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3 x 3 token grid needs 9"), std::string::npos)
        << e.what();
  }
}

TEST(ModelAutoencoderTest, BrainDefaultsMatchTheReferenceKeysAndCount) {
  const auto keys_path = std::filesystem::path(QFAE_TEST_FIXTURES) / "reference_brain_keys.json";
  ASSERT_TRUE(std::filesystem::exists(keys_path)) << keys_path;
  std::ifstream in(keys_path);
  const auto keys = nlohmann::json::parse(in);

  QFormerAutoencoder model{AutoencoderOptions{}};  // every default: brain configuration
  const auto state = qfae::io::module_state(*model);
  int64_t expected_trainable = 0;
  size_t compared = 0;
  for (const auto& [name, shape] : keys.items()) {
    if (name.rfind("encoders.0.model.", 0) == 0) continue;  // the frozen DINOv2 backbone
    ASSERT_TRUE(state.count(name)) << "missing " << name;
    EXPECT_EQ(state.at(name).sizes(), torch::IntArrayRef(shape.get<std::vector<int64_t>>()))
        << name;
    int64_t numel = 1;
    for (const auto d : shape.get<std::vector<int64_t>>()) numel *= d;
    if (name != "decoder.decoder_pos_embed") expected_trainable += numel;
    ++compared;
  }
  EXPECT_EQ(state.size(), compared) << "we hold names the reference does not";
  const auto trainable = qfae::model::count_trainable_parameters(*model);
  std::cout << "[ model ] brain-configuration trainable parameters: " << trainable << "\n";
  EXPECT_EQ(trainable, expected_trainable);
  // Independent arithmetic: projection + Q-Former + decoder.
  const int64_t d = 768, e = 1024, q = 784, hd = 96, inner = 512, dd = 768, p3 = 8 * 8 * 3;
  const int64_t projection = e * d + d;
  const int64_t qformer = q * d + (d * (d + 2 * hd) + d + 2 * hd) + (d * d + d) + 2 * 64 + 2 * d +
                          d * inner + d * 2 * inner + inner * d + 2 * d +
                          (2 * d + d * 4 * d + 4 * d + 4 * d * d + d);
  const int64_t block = 2 * dd + (dd * 3 * dd + 3 * dd) + (dd * dd + dd) + 2 * dd +
                        (dd * 4 * dd + 4 * dd) + (4 * dd * dd + dd);
  const int64_t decoder = (d * dd + dd) + dd + 4 * dd + 6 * block + 2 * dd + (dd * p3 + p3);
  EXPECT_EQ(trainable, projection + qformer + decoder);
  EXPECT_NEAR(double(trainable) / 1e6, 52.3, 0.05);
}
