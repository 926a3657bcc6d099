// Shared subcommand options and their resolution into a validated config.
#include "qfae/cli/common.h"

#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace qfae::cli {

void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("-c,--config", o.configs,
                 "YAML config file; repeat to layer them (later files override earlier)")
      ->check(CLI::ExistingFile);
  app.add_option("-s,--set", o.sets,
                 "Override one key, typed: --set train.lr=1e-4 --set backbone.taps=[-2,-4] "
                 "(qfae config --keys lists the keys)");
  app.add_option("--device", o.device, "auto|cpu|cuda|cuda:N (default: the config's device, "
                                       "auto = cuda when available)");
  app.add_option("-o,--output-dir", o.output_dir, "Folder for runs and results (default: runs)");
  app.add_option("--seed", o.seed, "Random seed (default: train.seed = 42)");
  app.add_flag("-v,--verbose", o.verbose, "More log output (repeat for trace)");
  app.add_flag("-q,--quiet", o.quiet, "Only warnings and errors");
}

config::LoadedConfig resolve_config(const CommonOptions& o, bool check_files) {
  set_log_verbosity(o.quiet ? -1 : o.verbose);
  auto loaded = config::load_config(o.configs, o.sets);
  if (!o.device.empty()) config::apply_assignment(loaded, "device=" + o.device, "--device");
  if (!o.output_dir.empty()) {
    config::apply_assignment(loaded, "output_dir=" + o.output_dir, "--output-dir");
  }
  if (o.seed) config::apply_assignment(loaded, "train.seed=" + std::to_string(*o.seed), "--seed");
  config::validate(loaded.config, loaded.sources, check_files);
  init_threads(static_cast<int>(loaded.config.threads));
  log("config")->debug("resolved config:\n{}", config::to_yaml(loaded.config));
  return loaded;
}

}  // namespace qfae::cli
