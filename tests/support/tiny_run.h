// Test support: a tiny synthetic dataset and a config that trains on it in seconds
// (32 px, the committed tiny backbones, a small Q-Former autoencoder).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "qfae/config/loader.h"
#include "qfae/data/synthetic.h"

namespace qfae::test {

inline std::string fixture(const std::string& name) {
  return std::string(QFAE_TEST_FIXTURES) + "/" + name;
}

// key=value overrides for a 32 px model on the tiny backbones; the data root is set by the caller.
inline std::vector<std::string> tiny_overrides() {
  return {"data.image_size=32",
          "data.layout=bmad",
          "data.workers=2",
          "backbone.encoders=[" + fixture("backbones/tiny_dino.pt") + "]",
          "backbone.encoder_model=test_tiny_dinov2_reg",
          "backbone.encoder_dim=32",
          "backbone.taps=[-1, -3]",
          "backbone.perceptual=" + fixture("backbones/tiny_mae.pt"),
          "backbone.perceptual_model=test_tiny_mae",
          "model.dim=32",
          "model.queries=16",
          "model.qformer_heads=4",
          "model.cross_heads=2",
          "model.cross_head_dim=16",
          "model.decoder_dim=32",
          "model.decoder_depth=1",
          "model.decoder_heads=4",
          "loss.patch_sizes=[8, 16]",
          "loss.layers=[1, 3]",
          "eval.patch_sizes=[8, 16]",
          "eval.layers=[1, 2, 3]",
          "train.batch_size=4",
          "train.epochs=3",
          "train.lr=1e-3",
          "train.log_every=1",
          "train.eval_every=1",
          "eval.batch_size=4"};
}

// Writes the synthetic dataset once per root (16 train, 4 val, 4 + 4 test) and returns the config.
inline config::LoadedConfig tiny_config(const std::filesystem::path& data_root,
                                        const std::vector<std::string>& extra = {}) {
  if (!std::filesystem::exists(data_root / "train")) {
    data::write_synthetic_dataset(data_root.string(), 32, 16, 4, 4, 4, /*seed=*/7);
  }
  auto sets = tiny_overrides();
  sets.push_back("data.root=" + data_root.string());
  sets.insert(sets.end(), extra.begin(), extra.end());
  return config::load_config({}, sets);
}

// "--set 'a' --set 'b' ..." for the tiny config on `data_root` plus extras (for run_qfae).
inline std::string tiny_sets(const std::filesystem::path& data_root,
                             const std::vector<std::string>& extra = {}) {
  std::string args;
  auto sets = tiny_overrides();
  sets.push_back("data.root=" + data_root.string());
  sets.insert(sets.end(), extra.begin(), extra.end());
  for (const auto& s : sets) args += " --set '" + s + "'";
  return args;
}

}  // namespace qfae::test
