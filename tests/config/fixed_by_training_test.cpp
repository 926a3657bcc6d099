// config::keys_fixed_by_training against keys picked by hand from config.h, and the README's list
// of those keys (between its "keys fixed by training" comments) against the function's.
#include "qfae/config/fixed_by_training.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "qfae/config/loader.h"

namespace {

bool fixed_keys_hold(const std::vector<std::string>& keys, const std::string& key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// The `backquoted` words between README.md's begin and end comments of the list.
std::vector<std::string> readme_fixed_keys(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<std::string> keys;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.find("<!-- keys fixed by training: begin") != std::string::npos) {
      inside = true;
    } else if (line.find("<!-- keys fixed by training: end") != std::string::npos) {
      return keys;
    } else if (inside) {
      for (size_t open = line.find('`'); open != std::string::npos;) {
        const size_t close = line.find('`', open + 1);
        if (close == std::string::npos) break;
        keys.push_back(line.substr(open + 1, close - open - 1));
        open = line.find('`', close + 1);
      }
    }
  }
  ADD_FAILURE() << path << ": no list between '<!-- keys fixed by training: begin' and "
                << "'<!-- keys fixed by training: end' comments";
  return keys;
}

}  // namespace

TEST(FixedByTraining, HoldsTheInputAndTheArchitectureOnly) {
  const auto keys = qfae::config::keys_fixed_by_training();
  for (const char* key :
       {"data.image_size", "data.mean", "data.std", "backbone.encoder_model",
        "backbone.encoder_dim", "backbone.taps", "backbone.perceptual_model", "model.dim",
        "model.queries", "model.causal", "model.decoder_registers"}) {
    EXPECT_TRUE(fixed_keys_hold(keys, key)) << key;
  }
  for (const char* key : {"model.dropout", "model.query_init_std", "model.decoder_checkpoint",
                          "data.root", "data.augment", "backbone.encoders", "backbone.perceptual",
                          "backbone.frozen_bf16", "eval.patch_sizes", "train.lr", "device"}) {
    EXPECT_FALSE(fixed_keys_hold(keys, key)) << key;
  }
  // Every model.* key but the three that only change how training runs, in declaration order.
  std::vector<std::string> model_keys;
  for (const auto& key : qfae::config::config_keys()) {
    if (key.rfind("model.", 0) == 0) model_keys.push_back(key);
  }
  std::vector<std::string> fixed_model_keys;
  for (const auto& key : keys) {
    if (key.rfind("model.", 0) == 0) fixed_model_keys.push_back(key);
  }
  EXPECT_EQ(fixed_model_keys.size() + 3, model_keys.size());
  const auto all = qfae::config::config_keys();
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
    return std::find(all.begin(), all.end(), a) < std::find(all.begin(), all.end(), b);
  }));
}

// The README lists the keys for users; this list is the one that counts.
TEST(FixedByTraining, ReadmeListsTheSameKeys) {
  const auto keys = qfae::config::keys_fixed_by_training();
  std::string expected;
  for (const auto& key : keys) expected += (expected.empty() ? "`" : ", `") + key + "`";
  EXPECT_EQ(readme_fixed_keys(std::string(QFAE_SOURCE_DIR) + "/README.md"), keys)
      << "README.md's list of keys fixed by training should read:\n"
      << expected;
}
