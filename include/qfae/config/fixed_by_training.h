// The config keys a trained model depends on: eval and infer refuse to change them. This is the
// one list; the README's copy is checked against it (FixedByTraining.ReadmeListsTheSameKeys).
#pragma once
#include <string>
#include <vector>

namespace qfae::config {

// Every key whose value the trained weights belong to, as full key paths in declaration order:
// the input (data.image_size, data.mean, data.std), what the encoder hands the model
// (backbone.encoder_model, encoder_dim, taps), the perceptual network (backbone.perceptual_model)
// and every model.* key but three: model.dropout (inactive in eval mode), model.query_init_std
// (overwritten by the loaded weights) and model.decoder_checkpoint (a training memory setting).
// A new model.* key is fixed unless it is added to those.
std::vector<std::string> keys_fixed_by_training();

}  // namespace qfae::config
