// `qfae infer`: anomaly maps and scores for images or folders, from a trained checkpoint.
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/cli/common.h"
#include "qfae/data/listing.h"
#include "qfae/evaluate/inference.h"
#include "qfae/run/checkpoint.h"
#include "qfae/run/run_dir.h"
#include "qfae/run/stop_signal.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace qfae::cli {

namespace {
struct InferOptions {
  CommonOptions common;
  std::string checkpoint;
  std::string which = "last";
  std::vector<std::string> inputs;
  std::optional<double> threshold;
  bool no_threshold = false;
  bool recursive = false;
  bool no_maps = false;
};

int run_infer(const InferOptions& o) {
  const run::StopSignalScope stop_handlers;  // SIGINT/SIGTERM now only set the flag polled below
  const auto found = find_checkpoint_paths(o.checkpoint, o.which);
  const auto loaded =
      resolve_checkpoint_config(o.common, found, o.common.configs, /*check_files=*/false);
  const auto& cfg = loaded.config;

  std::vector<data::InputProblem> problems;
  const auto files = data::collect_images(o.inputs, o.recursive, problems);
  for (const auto& p : problems) log("infer")->warn("{}: {}", p.input, p.reason);
  if (files.empty()) throw UserError("no image files to score in the inputs given");

  const auto device = resolve_device(cfg.device);
  anomaly::AnomalyModel model(cfg, device);
  anomaly::prepare_for_scoring(model);
  const auto progress = run::load_checkpoint(found.checkpoint, *model.autoencoder(), nullptr);

  evaluate::InferenceOptions io;
  std::string threshold_source;
  if (o.threshold) {
    io.threshold = *o.threshold;
    threshold_source = "--threshold";
  } else if (o.no_threshold) {
    threshold_source = "no threshold (--no-threshold): scores only";
  } else if (std::isfinite(progress.threshold)) {
    io.threshold = progress.threshold;
    threshold_source = "calibrated: " + std::to_string(cfg.eval.threshold_percentile) +
                       "th percentile of the validation normals' scores";
  } else {
    threshold_source = "no threshold: the checkpoint has no calibrated one (it was saved before "
                       "any validation) and --threshold was not given; scores only";
  }
  io.input_problems = problems;
  io.checkpoint = found.checkpoint;
  io.threshold_source = threshold_source;
  io.map_scale = progress.map_scale;
  io.save_maps = !o.no_maps;
  io.progress = !o.common.quiet;
  // Without -o: <run>/infer/<timestamp>, reserved empty now, filled whole at the end.
  const bool new_dir = o.common.output_dir.empty();
  io.out_dir = new_dir ? run::reserve_run_dir(found.run, "infer") : o.common.output_dir;
  RemoveIfEmpty unused(new_dir ? io.out_dir : "");
  if (std::isfinite(io.threshold)) {
    log("infer")->info("threshold {:.6g} ({})", io.threshold, threshold_source);
  } else {
    log("infer")->info("{}", threshold_source);
  }
  evaluate::InferenceResult result;
  try {
    result = evaluate::infer_images(model, files, io);
  } catch (const run::StopRequested& e) {
    log("infer")->warn("{}: nothing was written to {} (an earlier result there is as it was)",
                       e.what(), io.out_dir);
    return 128 + e.signal_number();
  }
  if (new_dir) run::point_latest(io.out_dir);
  std::cout << "infer: " << result.processed << " of " << files.size() << " images scored";
  if (std::isfinite(io.threshold)) std::cout << ", " << result.flagged << " anomalous";
  if (!result.failed.empty()) std::cout << ", " << result.failed.size() << " not scored";
  if (!problems.empty()) {
    std::cout << "; " << problems.size() << " of " << o.inputs.size() << " inputs gave no image ("
              << problems.front().input << ": " << problems.front().reason
              << (problems.size() > 1 ? ", ..." : "") << ")";
  }
  std::cout << " -> " << io.out_dir << "/scores.csv" << (io.save_maps ? " and maps/" : "")
            << "\n";
  for (const auto& f : result.failed) std::cerr << "qfae: could not score " << f << "\n";
  if (result.processed == 0) return kExitBadInput;
  return result.failed.empty() && problems.empty() ? 0 : 3;
}
}  // namespace

Command add_infer_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "infer",
      "Anomaly maps and scores for images or folders:\n"
      "  qfae infer --checkpoint runs/demo/latest scan.png more_scans/\n"
      "writes scores.csv and maps/ overlays into <run>/infer/<timestamp>/ (or -o DIR).\n"
      "Exit codes: 0 all scored, 3 some inputs could not be read (listed), 2 none scored or\n"
      "bad input, 130/143 stopped by SIGINT/SIGTERM (nothing written). The output folder is\n"
      "replaced only by a complete new one.");
  auto o = std::make_shared<InferOptions>();
  add_common_options(*sub, o->common);
  add_no_verify_option(*sub);
  sub->add_option("--checkpoint", o->checkpoint, "Trained run or checkpoint folder")
      ->required()
      ->check(CLI::ExistingPath);
  sub->add_option("--which", o->which, "Checkpoint of a run folder to use")
      ->check(CLI::IsMember({"last", "best"}));
  sub->add_option("inputs", o->inputs, "Image files or folders")->required();
  auto* threshold =
      sub->add_option("--threshold", o->threshold,
                      "Decision threshold on the image score, a finite number (default: the "
                      "checkpoint's calibrated one, eval.threshold_percentile of the validation "
                      "normals' scores)")
          ->check(finite_number());
  sub->add_flag("--no-threshold", o->no_threshold, "Scores only, no anomalous/normal decision")
      ->excludes(threshold);
  sub->add_flag("-r,--recursive", o->recursive, "Look for images in sub-folders too");
  sub->add_flag("--no-maps", o->no_maps, "Only the CSV, no overlay images");
  return {sub, [o] { return run_infer(*o); }};
}

}  // namespace qfae::cli
