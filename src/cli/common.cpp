// Shared subcommand options and their resolution into a validated config; what eval and infer
// share about checkpoints and their results folders.
#include "qfae/cli/common.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "qfae/config/fixed_by_training.h"
#include "qfae/dist/world.h"
#include "qfae/run/checkpoint.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace qfae::cli {

namespace {
// A number flag that must be finite, and > 0 when `positive`.
CLI::Validator finite_validator(bool positive) {
  return CLI::Validator(
      [positive](const std::string& text) -> std::string {
        char* end = nullptr;
        const double x = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "'" + text + "' is not a number";
        if (!std::isfinite(x) || (positive && x <= 0)) {
          return "'" + text + "' is not a finite number" + (positive ? " > 0" : "");
        }
        return "";
      },
      positive ? "FINITE > 0" : "FINITE");
}
}  // namespace

const CLI::Validator& finite_positive() {
  static const CLI::Validator v = finite_validator(true);
  return v;
}

const CLI::Validator& finite_number() {
  static const CLI::Validator v = finite_validator(false);
  return v;
}

CLI::Validator integer_at_least(int64_t low) {
  return CLI::Validator(
      [low](const std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long x = std::strtoll(text.c_str(), &end, 10);
        if (end == text.c_str() || *end != '\0') return "'" + text + "' is not a whole number";
        if (errno == ERANGE || x < low) {
          return "'" + text + "' is not a whole number >= " + std::to_string(low);
        }
        return "";
      },
      "INT >= " + std::to_string(low));
}

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

void add_no_verify_option(CLI::App& app) {
  app.add_flag_callback("--no-verify", [] { run::set_verify_checksums(false); },
                        "Load checkpoints without checking their files against the "
                        "checksums.sha256 recorded when they were saved (for weights edited on "
                        "purpose); otherwise a file that differs is exit 2 naming it");
}

config::LoadedConfig resolve_config(const CommonOptions& o, bool check_files) {
  // Data-parallel: rank 0 speaks for the job; the others say only warnings and errors.
  const auto world = dist::world_from_environment();
  set_log_verbosity(o.quiet || !world.leader() ? -1 : o.verbose);
  auto loaded = config::load_config(o.configs, o.sets);
  if (!o.device.empty()) config::apply_assignment(loaded, "device=" + o.device, "--device");
  if (!o.output_dir.empty()) {
    config::apply_assignment(loaded, "output_dir=" + o.output_dir, "--output-dir");
  }
  if (o.seed) config::apply_assignment(loaded, "train.seed=" + std::to_string(*o.seed), "--seed");
  config::validate(loaded.config, loaded.sources, check_files);
  // Ranks on one machine share its cores.
  init_threads(dist::threads_per_rank(static_cast<int>(loaded.config.threads), world,
                                      usable_cores()));
  log("config")->debug("resolved config:\n{}", config::to_yaml(loaded.config));
  return loaded;
}

namespace {
std::filesystem::path without_trailing_slash(const std::string& folder) {
  std::filesystem::path p(folder);
  return p.filename().empty() ? p.parent_path() : p;
}
}  // namespace

std::string run_folder_of(const std::string& checkpoint) {
  const auto p = without_trailing_slash(checkpoint);
  return p.parent_path().filename() == "checkpoints" ? p.parent_path().parent_path().string()
                                                     : p.string();
}

std::string checkpoint_label(const std::string& checkpoint) {
  const auto p = without_trailing_slash(checkpoint);
  std::string name = p.filename().string();
  const std::string old = ".old";
  if (name.size() > old.size() && name.compare(name.size() - old.size(), old.size(), old) == 0) {
    name.resize(name.size() - old.size());
  }
  return name;
}

CheckpointPaths find_checkpoint_paths(const std::string& arg, const std::string& which) {
  CheckpointPaths found;
  found.checkpoint = run::find_checkpoint(arg, which);
  found.config = (std::filesystem::path(found.checkpoint) / "config.yaml").string();
  if (!std::filesystem::is_regular_file(found.config)) {
    throw UserError("--checkpoint " + arg + ": " + found.checkpoint + " has no config.yaml");
  }
  found.run = run_folder_of(found.checkpoint);
  return found;
}

config::LoadedConfig resolve_checkpoint_config(const CommonOptions& options,
                                               const CheckpointPaths& found,
                                               const std::vector<std::string>& configs,
                                               bool check_files) {
  CommonOptions common = options;
  common.configs = {found.config};
  common.configs.insert(common.configs.end(), configs.begin(), configs.end());
  common.output_dir.clear();
  auto loaded = resolve_config(common, check_files);
  check_fixed_by_training(loaded, found.config);
  return loaded;
}

RemoveIfEmpty::~RemoveIfEmpty() {
  std::error_code ignored;
  if (!dir_.empty() && std::filesystem::is_empty(dir_, ignored)) {
    std::filesystem::remove(dir_, ignored);
  }
}

void check_fixed_by_training(const config::LoadedConfig& given, const std::string& saved_yaml) {
  static const auto kFixed = config::keys_fixed_by_training();
  const auto trained = config::load_config({saved_yaml}, {}).config;
  std::string list;
  for (const auto& d : config::differing_keys(trained, given.config, kFixed)) {
    const auto source = given.sources.find(d.key);
    list += "; " + d.key + ": trained with " + d.a + ", given " + d.b +
            (source != given.sources.end() ? " (" + source->second + ")" : "");
  }
  if (list.empty()) return;
  throw UserError(saved_yaml + ": the checkpoint was trained with other values of keys that are "
                  "fixed by training (its weights belong to that architecture and input)" + list +
                  ". Leave them out of --set and --config, or train a new run with them.");
}

}  // namespace qfae::cli
