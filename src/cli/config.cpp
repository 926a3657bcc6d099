// `qfae config`: the resolved config as YAML, the list of keys, or the model's parameter counts.
#include <cstdio>
#include <iostream>
#include <memory>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/cli/common.h"
#include "qfae/model/autoencoder.h"

namespace qfae::cli {
namespace {

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  return buf;
}

void print_summary(const config::Config& cfg) {
  const auto options = anomaly::autoencoder_options(cfg);
  model::QFormerAutoencoder ae(options);
  const auto grid = cfg.decoder_grid();
  std::cout << "# model summary (B batch, L fused encoder tokens)\n"
            << "#   encoders: " << options.encoder_dims.size() << " x (B, L, "
            << cfg.backbone.encoder_dim << ") from taps";
  for (auto t : cfg.backbone.taps) std::cout << " " << t;
  std::cout << "\n#   projection -> (B, L, " << cfg.model.dim << ")\n"
            << "#   Q-Former: " << cfg.model.qformer_depth << " block(s), " << cfg.model.queries
            << " queries -> (B, " << cfg.model.queries << ", " << cfg.model.dim << ")\n"
            << "#   decoder: " << cfg.model.decoder_depth << " x " << cfg.model.decoder_dim
            << ", " << grid << "x" << grid << " tokens of " << cfg.model.decoder_patch << "x"
            << cfg.model.decoder_patch << " px -> (B, 3, " << cfg.data.image_size << ", "
            << cfg.data.image_size << ")\n"
            << "#   trainable parameters: projection "
            << millions(model::count_trainable_parameters(*ae->encoders_))
            << ", Q-Former " << millions(model::count_trainable_parameters(*ae->junction_))
            << ", decoder " << millions(model::count_trainable_parameters(*ae->decoder_))
            << ", total " << millions(model::count_trainable_parameters(*ae)) << " ("
            << model::count_trainable_parameters(*ae) << ")\n";
}

}  // namespace

Command add_config_command(CLI::App& app) {
  auto* sub = app.add_subcommand("config", "Print the resolved config (defaults < --config files "
                                           "< --set < flags) as YAML");
  auto options = std::make_shared<CommonOptions>();
  auto keys = std::make_shared<bool>(false);
  auto summary = std::make_shared<bool>(false);
  add_common_options(*sub, *options);
  sub->add_flag("--keys", *keys, "List every key with its default value instead");
  sub->add_flag("--summary", *summary,
                "Also print the model's shapes and parameter counts (builds the model, loads "
                "no backbone)");
  return {sub, [options, keys, summary] {
            if (*keys) {
              std::cout << config::to_yaml(config::Config{});
              return 0;
            }
            const auto loaded = resolve_config(*options, /*check_files=*/false);
            std::cout << config::to_yaml(loaded.config);
            if (*summary) print_summary(loaded.config);
            return 0;
          }};
}

}  // namespace qfae::cli
