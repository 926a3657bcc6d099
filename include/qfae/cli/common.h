// Options every subcommand shares (--config, --set, --device, --output-dir, --seed, -v, -q) and
// the one place where they become a resolved, validated Config.
#pragma once
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "qfae/config/loader.h"

namespace qfae::cli {

struct CommonOptions {
  std::vector<std::string> configs;  // later files override earlier ones
  std::vector<std::string> sets;     // key.path=value, applied after the files
  std::string device;                // empty: keep the config's
  std::string output_dir;            // empty: keep the config's
  std::optional<int64_t> seed;
  int verbose = 0;
  bool quiet = false;
};

void add_common_options(CLI::App& app, CommonOptions& options);
// --no-verify: checkpoints load without their checksums checked (run::set_verify_checksums).
void add_no_verify_option(CLI::App& app);

// A number flag that must be finite and > 0 (CLI::PositiveNumber lets NaN through).
const CLI::Validator& finite_positive();
// A number flag that must be finite (not nan, inf or -inf).
const CLI::Validator& finite_number();
// A whole-number flag >= `low`, with a message that names the bound (CLI11's PositiveNumber and
// NonNegativeNumber print the largest double, 309 digits, as theirs).
CLI::Validator integer_at_least(int64_t low);

// Defaults < --config files < --set < --device/--output-dir/--seed; then validate() (files too
// when `check_files`), set the log level and the thread count, and log the resolved config.
config::LoadedConfig resolve_config(const CommonOptions& options, bool check_files);

// The run folder of a checkpoint folder (<run>/checkpoints/<which>), or the folder itself.
std::string run_folder_of(const std::string& checkpoint);
// A checkpoint folder's name for output folders: "last" for .../last, and for .../last.old too
// (find_checkpoint returns the ".old" folder when a crash came between its renames).
std::string checkpoint_label(const std::string& checkpoint);

// What eval's and infer's --checkpoint names, found: a run folder's checkpoints/<which> or a
// checkpoint folder itself (run::find_checkpoint), with its saved config and its run folder.
struct CheckpointPaths {
  std::string checkpoint;  // the folder holding the weights
  std::string config;      // <checkpoint>/config.yaml, the config it was trained with
  std::string run;         // run_folder_of(checkpoint)
};
// UserError when `arg` holds no checkpoint, or "--checkpoint <arg>: <folder> has no config.yaml".
CheckpointPaths find_checkpoint_paths(const std::string& arg, const std::string& which);

// The config to score a checkpoint with: its saved config.yaml, then `configs` on top of it, then
// the rest of `options` but -o (which names the results folder here, not the training output);
// resolved by resolve_config and refused when it changes keys fixed by training.
config::LoadedConfig resolve_checkpoint_config(const CommonOptions& options,
                                               const CheckpointPaths& found,
                                               const std::vector<std::string>& configs,
                                               bool check_files);

// Removes `dir` at the end of the scope if it is still empty: a reserved results folder
// (reserve_run_dir) whose work failed or was stopped leaves nothing behind.
class RemoveIfEmpty {
 public:
  explicit RemoveIfEmpty(std::string dir) : dir_(std::move(dir)) {}
  ~RemoveIfEmpty();
  RemoveIfEmpty(const RemoveIfEmpty&) = delete;
  RemoveIfEmpty& operator=(const RemoveIfEmpty&) = delete;

 private:
  std::string dir_;
};

// The keys a checkpoint's weights were trained for, config::keys_fixed_by_training(): UserError
// when `given` (the config eval or infer resolved) differs from the checkpoint's saved config.yaml
// in any of them, naming each key, the trained value, the given one and where it came from. Every
// other key (eval.*, data.root, backbone file paths, device, threads) may differ.
void check_fixed_by_training(const config::LoadedConfig& given, const std::string& saved_yaml);

// A subcommand: its CLI11 node and what runs when it was chosen (returns the exit code).
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_version_command(CLI::App& app);
Command add_config_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_infer_command(CLI::App& app);
Command add_prepare_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_report_command(CLI::App& app);

}  // namespace qfae::cli
