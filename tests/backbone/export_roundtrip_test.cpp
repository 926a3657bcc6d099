// Full-size exports from scripts/export_backbone.py against timm's own forward, through qfae's
// loader: driven by tests/scripts/test_export_roundtrip.py (and test_import_reference_timm.py),
// which name the files in QFAE_ROUNDTRIP_*; skipped without them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "qfae/backbone/torchscript_backbone.h"
#include "qfae/config/loader.h"
#include "qfae/io/safetensors.h"

using qfae::backbone::TorchScriptBackbone;

namespace {

constexpr double kMaxRelativeError = 1e-4;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// "-2,-4" -> {-2, -4}
std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// The expected file: "input" (B, 3, H, W) and timm's block outputs, with metadata naming the
// models, taps, patch sizes and layers it holds.
struct Expected {
  qfae::io::SafetensorsFile file;
  std::vector<int64_t> list(const std::string& key) const {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::vector<int64_t>{} : parse_list(it->second);
  }
  std::string text(const std::string& key) const {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? "" : it->second;
  }
  const torch::Tensor& at(const std::string& name) const {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw std::runtime_error("expected file has no " + name);
    return it->second;
  }
};

// The brain config: what qfae will ask of these files.
qfae::config::Config brain_config() {
  return qfae::config::load_config({std::string(QFAE_CONFIG_DIR) + "/brats.yaml"}, {}).config;
}

bool contains_all(const std::vector<int64_t>& have, const std::vector<int64_t>& need) {
  return std::all_of(need.begin(), need.end(), [&](int64_t v) {
    return std::find(have.begin(), have.end(), v) != have.end();
  });
}

// max |got - want| / max |want|, printed so the driver's log shows every figure.
double relative_error(const torch::Tensor& got, const torch::Tensor& want,
                      const std::string& what) {
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  if (got.sizes() != want.sizes()) return 1.0;
  const double scale = want.abs().max().item<double>();
  const double err = (got - want).abs().max().item<double>() / scale;
  std::printf("[roundtrip] %-34s max |want| %9.3e  max rel. error %.2e\n", what.c_str(), scale,
              err);
  std::fflush(stdout);
  return err;
}

}  // namespace

TEST(ExportRoundTrip, EncoderTapsMatchTimm) {
  const auto expected_path = env("QFAE_ROUNDTRIP_EXPECTED");
  const auto path = env("QFAE_ROUNDTRIP_ENCODER");
  if (expected_path.empty() || path.empty()) {
    GTEST_SKIP() << "QFAE_ROUNDTRIP_EXPECTED / QFAE_ROUNDTRIP_ENCODER not set: run by "
                    "tests/scripts/test_export_roundtrip.py (ctest -R Scripts.export_roundtrip)";
  }
  const Expected expected{qfae::io::load_safetensors(expected_path)};
  const auto cfg = brain_config();
  const auto taps = expected.list("encoder_taps");
  ASSERT_TRUE(contains_all(taps, cfg.backbone.taps)) << "the expected file misses a brain tap";

  TorchScriptBackbone encoder(path, torch::kCPU);
  const auto& d = encoder.description();
  EXPECT_EQ(d.model, expected.text("encoder_model"));
  EXPECT_EQ(d.model, cfg.backbone.encoder_model);
  EXPECT_EQ(d.depth, 24);
  EXPECT_EQ(d.width, cfg.backbone.encoder_dim);
  EXPECT_EQ(d.num_prefix, 5);  // CLS + 4 registers
  // What anomaly::AnomalyModel asks of backbone.encoders[0].
  EXPECT_NO_THROW(encoder.require_model(cfg.backbone.encoder_model));
  EXPECT_NO_THROW(encoder.require_image_size(cfg.data.image_size));
  EXPECT_NO_THROW(encoder.require_width(cfg.backbone.encoder_dim));
  EXPECT_NO_THROW(
      encoder.resolve_taps(std::vector<int>(cfg.backbone.taps.begin(), cfg.backbone.taps.end())));

  // All taps in one call, as the model asks for them.
  const std::vector<int> tap_ints(taps.begin(), taps.end());
  const auto outputs = encoder.forward(expected.at("input"), tap_ints);
  ASSERT_EQ(outputs.size(), taps.size());
  for (size_t i = 0; i < taps.size(); ++i) {
    const std::string name = "encoder/tap=" + std::to_string(taps[i]);
    EXPECT_LE(relative_error(outputs[i], expected.at(name), name), kMaxRelativeError);
  }
}

TEST(ExportRoundTrip, PerceptualLayersMatchTimmAtEveryPatchSize) {
  const auto expected_path = env("QFAE_ROUNDTRIP_EXPECTED");
  const auto path = env("QFAE_ROUNDTRIP_PERCEPTUAL");
  if (expected_path.empty() || path.empty()) {
    GTEST_SKIP() << "QFAE_ROUNDTRIP_EXPECTED / QFAE_ROUNDTRIP_PERCEPTUAL not set: run by "
                    "tests/scripts/test_export_roundtrip.py (ctest -R Scripts.export_roundtrip)";
  }
  const Expected expected{qfae::io::load_safetensors(expected_path)};
  const auto cfg = brain_config();
  const auto patch_sizes = expected.list("perceptual_patch_sizes");
  const auto layers = expected.list("perceptual_layers");
  for (const auto& [sizes, layer_list] : {std::pair{cfg.loss.patch_sizes, cfg.loss.layers},
                                          std::pair{cfg.eval.patch_sizes, cfg.eval.layers}}) {
    ASSERT_TRUE(contains_all(patch_sizes, sizes)) << "the expected file misses a patch size";
    ASSERT_TRUE(contains_all(layers, layer_list)) << "the expected file misses a layer";
  }

  TorchScriptBackbone mae(path, torch::kCPU);
  const auto& d = mae.description();
  EXPECT_EQ(d.model, expected.text("perceptual_model"));
  EXPECT_EQ(d.model, cfg.backbone.perceptual_model);
  EXPECT_EQ(d.num_prefix, 1);  // CLS only
  // What anomaly::AnomalyModel and the perceptual distances ask.
  EXPECT_NO_THROW(mae.require_model(cfg.backbone.perceptual_model));
  EXPECT_NO_THROW(mae.require_image_size(cfg.data.image_size));
  EXPECT_NO_THROW(mae.require_patch_sizes(patch_sizes));
  EXPECT_NO_THROW(mae.resolve_taps(std::vector<int>(layers.begin(), layers.end())));

  const std::vector<int> layer_ints(layers.begin(), layers.end());
  for (const auto p : patch_sizes) {
    const auto outputs = mae.forward(expected.at("input"), layer_ints, p);
    ASSERT_EQ(outputs.size(), layers.size());
    EXPECT_EQ(outputs[0].size(1), 1 + (d.image_size / p) * (d.image_size / p));
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string name =
          "perceptual/patch=" + std::to_string(p) + "/layer=" + std::to_string(layers[i]);
      EXPECT_LE(relative_error(outputs[i], expected.at(name), name), kMaxRelativeError);
    }
  }
}
