// `qfae config`: the resolved config as YAML, the list of keys, or the model's parameter counts.
#include <iostream>
#include <memory>

#include "qfae/cli/common.h"

namespace qfae::cli {

Command add_config_command(CLI::App& app) {
  auto* sub = app.add_subcommand("config", "Print the resolved config (defaults < --config files "
                                           "< --set < flags) as YAML");
  auto options = std::make_shared<CommonOptions>();
  auto keys = std::make_shared<bool>(false);
  add_common_options(*sub, *options);
  sub->add_flag("--keys", *keys, "List every key with its default value instead");
  return {sub, [options, keys] {
            if (*keys) {
              std::cout << config::to_yaml(config::Config{});
              return 0;
            }
            const auto loaded = resolve_config(*options, /*check_files=*/false);
            std::cout << config::to_yaml(loaded.config);
            return 0;
          }};
}

}  // namespace qfae::cli
