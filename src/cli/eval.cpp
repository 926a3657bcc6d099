// `qfae eval`: anomaly maps and the field's metrics for trained checkpoints on a split; several
// checkpoints give one summary table across them.
#include <filesystem>
#include <iostream>
#include <memory>

#include "qfae/cli/common.h"
#include "qfae/data/dataset.h"
#include "qfae/engine/anomaly_scorer.h"
#include "qfae/engine/checkpoint.h"
#include "qfae/engine/eval_report.h"
#include "qfae/engine/evaluator.h"
#include "qfae/engine/run_dir.h"
#include "qfae/engine/system.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;

namespace qfae::cli {

namespace {
struct EvalOptions {
  CommonOptions common;
  std::vector<std::string> checkpoints;
  std::string split = "test";
  std::string which = "last";
  bool no_threshold = false;
};

// The run folder of a checkpoint folder (<run>/checkpoints/<which>), or the folder itself.
fs::path run_folder_of(const fs::path& checkpoint) {
  const auto parent = checkpoint.parent_path();
  return parent.filename() == "checkpoints" ? parent.parent_path() : checkpoint;
}

nlohmann::json evaluate_one(const EvalOptions& o, const std::string& checkpoint_arg,
                            const std::vector<std::string>& extra_configs, bool batch) {
  const std::string ckpt = engine::find_checkpoint(checkpoint_arg, o.which);
  const auto saved = fs::path(ckpt) / "config.yaml";
  if (!fs::is_regular_file(saved)) {
    throw UserError("--checkpoint " + checkpoint_arg + ": " + ckpt + " has no config.yaml");
  }
  CommonOptions common = o.common;
  common.configs = {saved.string()};
  common.configs.insert(common.configs.end(), extra_configs.begin(), extra_configs.end());
  common.output_dir.clear();  // -o names the results folder here, not the training output
  const auto loaded = resolve_config(common, /*check_files=*/true);
  const auto& cfg = loaded.config;
  const auto device = resolve_device(cfg.device);
  engine::System system(cfg, device);
  engine::prepare_for_scoring(system);
  const auto progress = engine::load_checkpoint(ckpt, *system.autoencoder(), nullptr);
  const auto index = data::index_dataset(cfg.data, static_cast<uint64_t>(cfg.train.seed));
  const auto& samples = o.split == "val" ? index.val : index.test;

  engine::EvaluationOptions eo;
  eo.checkpoint = fs::absolute(ckpt).lexically_normal().string();
  eo.split = o.split;
  const std::string leaf = o.split + "-" + fs::path(ckpt).filename().string();
  if (!o.common.output_dir.empty()) {
    eo.out_dir = batch ? (fs::path(o.common.output_dir) / (cfg.name + "-" + leaf)).string()
                       : o.common.output_dir;
  } else {
    eo.out_dir = (run_folder_of(fs::path(ckpt)) / "eval" / leaf).string();
  }
  if (!o.no_threshold) eo.threshold = progress.threshold;
  eo.progress = !o.common.quiet;
  log("eval")->info("{}: {} {} images from {} on {}", cfg.name, samples.size(), o.split,
                    cfg.data.root, device.str());
  const auto result = engine::evaluate_split(system, samples, eo);
  std::cout << result.summary << "\n";
  log("eval")->info("results in {} (metrics.json, scores.csv, maps/, roc.png, pr.png)",
                    eo.out_dir);
  return result.metrics;
}

int run_eval(const EvalOptions& o) {
  if (o.checkpoints.empty()) {
    throw UserError("qfae eval needs --checkpoint RUN_OR_CHECKPOINT_FOLDER (repeat it to "
                    "evaluate several runs)");
  }
  const size_t n = o.checkpoints.size(), c = o.common.configs.size();
  if (n > 1 && c > 0 && c != n) {
    throw UserError("with " + std::to_string(n) + " --checkpoint folders, give no --config or one "
                    "per checkpoint (got " + std::to_string(c) + "); --config i is applied on "
                    "top of checkpoint i's own config");
  }
  if (n == 1) {
    evaluate_one(o, o.checkpoints[0], o.common.configs, /*batch=*/false);
    return 0;
  }
  std::vector<nlohmann::json> runs;
  int failures = 0;
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> extra;
    if (c) extra.push_back(o.common.configs[i]);
    try {
      runs.push_back(evaluate_one(o, o.checkpoints[i], extra, /*batch=*/true));
    } catch (const UserError& e) {
      ++failures;
      log("eval")->error("{}: {} (continuing with the others)", o.checkpoints[i], e.what());
    }
  }
  if (runs.empty()) throw UserError("no checkpoint could be evaluated");
  std::string dir = o.common.output_dir;
  if (dir.empty()) {
    dir = engine::create_run_dir(config::Config{}.output_dir, "eval-summary");
  }
  std::cout << "\n" << engine::write_summary_tables(dir, runs);
  log("eval")->info("summary of {} runs in {}/summary.md and summary.csv{}", runs.size(), dir,
                    failures ? " (" + std::to_string(failures) + " failed, see above)" : "");
  return failures ? 2 : 0;
}
}  // namespace

Command add_eval_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "eval",
      "Evaluate trained models: anomaly maps, scores and metrics.\n"
      "  qfae eval --checkpoint runs/demo/latest\n"
      "writes <run>/eval/test-last/{metrics.json, scores.csv, maps/, roc.png, pr.png}.\n"
      "Several --checkpoint folders (with no --config, or one --config each, applied on top of\n"
      "that checkpoint's own config) also write summary.md / summary.csv across them, with\n"
      "mean ± std over runs named <name>-seed<N> (see scripts/sweep.sh).");
  auto o = std::make_shared<EvalOptions>();
  add_common_options(*sub, o->common);
  sub->add_option("--checkpoint", o->checkpoints,
                  "Run folder or checkpoint folder; repeat for batch evaluation")
      ->check(CLI::ExistingPath);
  sub->add_option("--split", o->split, "Which split to evaluate")
      ->check(CLI::IsMember({"test", "val"}));
  sub->add_option("--which", o->which, "Checkpoint of a run folder to use")
      ->check(CLI::IsMember({"last", "best"}));
  sub->add_flag("--no-threshold", o->no_threshold,
                "Do not apply the checkpoint's calibrated threshold (no 'anomalous' column)");
  sub->footer("-o/--output-dir: the results folder (one checkpoint) or the summary folder "
              "(several; each run's results go in <dir>/<name>-<split>-<which>).");
  return {sub, [o] { return run_eval(*o); }};
}

}  // namespace qfae::cli
