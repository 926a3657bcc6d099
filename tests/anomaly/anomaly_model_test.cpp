// anomaly::AnomalyModel names the config key behind every value its backbones cannot serve: the
// backbones state the fact (the file, what it offers), AnomalyModel knows which key asked for it.
// Every config here passes validate(): only the loaded backbone can refuse these values.
#include "qfae/anomaly/anomaly_model.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "../support/tiny_run.h"
#include "../support/user_error.h"

namespace qfae::anomaly {
namespace {

// The UserError message of building an AnomalyModel from the tiny config plus `extra` ("" if none).
std::string model_build_error(const std::vector<std::string>& extra) {
  auto sets = test::tiny_overrides();
  sets.insert(sets.end(), extra.begin(), extra.end());
  const auto loaded = config::load_config({}, sets);
  config::validate(loaded.config, loaded.sources, /*check_files=*/false);
  return test::user_error([&] { AnomalyModel(loaded.config, torch::kCPU); });
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(AnomalyModelKeys, TheTinyConfigBuilds) { EXPECT_EQ(model_build_error({}), ""); }

// tiny_mae.pt offers patch sizes [8, 16]; 32 divides data.image_size, so validate() lets it by.
TEST(AnomalyModelKeys, EvalPatchSizeTheExportLacksNamesEvalPatchSizes) {
  const auto msg = model_build_error({"eval.patch_sizes=[8, 32]"});
  EXPECT_EQ(msg.rfind("eval.patch_sizes: ", 0), 0u) << msg;
  EXPECT_TRUE(mentions(msg, "tiny_mae.pt")) << msg;
  EXPECT_TRUE(mentions(msg, "[8, 16]")) << msg;
  EXPECT_TRUE(mentions(msg, "not 32")) << msg;
  EXPECT_FALSE(mentions(msg, "loss.")) << msg;
}

// tiny_mae.pt has 4 blocks: layer 7 does not exist.
TEST(AnomalyModelKeys, EvalLayerBeyondTheMaeNamesEvalLayers) {
  const auto msg = model_build_error({"eval.layers=[1, 7]"});
  EXPECT_EQ(msg.rfind("eval.layers: ", 0), 0u) << msg;
  EXPECT_TRUE(mentions(msg, "tiny_mae.pt")) << msg;
  EXPECT_TRUE(mentions(msg, "tap 7")) << msg;
  EXPECT_FALSE(mentions(msg, "loss.")) << msg;
}

// The keys that were named right before the lower layers stopped naming them stay right.
TEST(AnomalyModelKeys, EveryOtherMismatchNamesItsKeyAndFile) {
  const std::vector<std::pair<std::vector<std::string>, std::pair<std::string, std::string>>>
      cases = {
          {{"loss.patch_sizes=[32]"}, {"loss.patch_sizes", "tiny_mae.pt"}},
          {{"loss.layers=[1, 4]"}, {"loss.layers", "tiny_mae.pt"}},
          {{"backbone.taps=[-1, 4]"}, {"backbone.taps", "tiny_dino.pt"}},
          {{"backbone.encoder_dim=64"}, {"backbone.encoder_dim", "tiny_dino.pt"}},
          {{"backbone.encoder_model=vit_small"}, {"backbone.encoder_model", "tiny_dino.pt"}},
          {{"backbone.perceptual_model=vit_large_patch16_224.mae"},
           {"backbone.perceptual_model", "tiny_mae.pt"}},
          // 64 px: the tiny encoder was exported for 32 (queries follow the decoder grid).
          {{"data.image_size=64", "model.queries=64"}, {"data.image_size", "tiny_dino.pt"}},
          // An encoder exported for 64 px passes; the 32 px MAE does not.
          {{"data.image_size=64", "model.queries=64",
            "backbone.encoders=[" + test::fixture("backbones/tiny_dino64.pt") + "]"},
           {"data.image_size", "tiny_mae.pt"}},
      };
  for (const auto& [extra, want] : cases) {
    const auto& [key, file] = want;
    const auto msg = model_build_error(extra);
    EXPECT_EQ(msg.rfind(key + ": ", 0), 0u) << extra.front() << " -> '" << msg << "'";
    EXPECT_TRUE(mentions(msg, file)) << extra.front() << " -> '" << msg << "'";
  }
}

// The Q-Former's and the decoder's MLP ratios are separate keys, as in the reference's configs: the
// hidden widths are ratio x width (model.dim = model.decoder_dim = 32 in the tiny config).
TEST(AnomalyModelKeys, MlpRatiosSizeTheirOwnBlocks) {
  auto sets = test::tiny_overrides();
  sets.insert(sets.end(), {"model.qformer_mlp_ratio=2", "model.decoder_mlp_ratio=3"});
  const auto loaded = config::load_config({}, sets);
  config::validate(loaded.config, loaded.sources, /*check_files=*/false);
  AnomalyModel model(loaded.config, torch::kCPU);
  const auto params = model.autoencoder()->named_parameters();
  EXPECT_EQ(params["junction.blocks.0.projection.1.weight"].sizes(),
            (std::vector<int64_t>{2 * 32, 32}));
  EXPECT_EQ(params["decoder.decoder_blocks.0.mlp.fc1.weight"].sizes(),
            (std::vector<int64_t>{3 * 32, 32}));
}

}  // namespace
}  // namespace qfae::anomaly
