// The keys fixed by training (see fixed_by_training.h), selected from the config's own key list
// so that a new model.* key is fixed by default.
#include "qfae/config/fixed_by_training.h"

#include <algorithm>

#include "qfae/config/loader.h"

namespace qfae::config {

std::vector<std::string> keys_fixed_by_training() {
  // A trailing dot selects a whole section.
  static const std::vector<std::string> kTrained = {"model.",
                                                    "backbone.taps",
                                                    "backbone.encoder_dim",
                                                    "backbone.encoder_model",
                                                    "backbone.perceptual_model",
                                                    "data.image_size",
                                                    "data.mean",
                                                    "data.std"};
  static const std::vector<std::string> kFree = {"model.dropout", "model.query_init_std",
                                                 "model.decoder_checkpoint"};
  const auto listed = [](const std::vector<std::string>& list, const std::string& key) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& s) {
      return s.back() == '.' ? key.rfind(s, 0) == 0 : key == s;
    });
  };
  std::vector<std::string> keys;
  for (const auto& key : config_keys()) {
    if (listed(kTrained, key) && !listed(kFree, key)) keys.push_back(key);
  }
  return keys;
}

}  // namespace qfae::config
