// `qfae eval`: anomaly maps and the field's metrics for trained checkpoints on a split; several
// checkpoints give one summary table across them.
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/cli/app.h"
#include "qfae/cli/common.h"
#include "qfae/cli/dist_options.h"
#include "qfae/data/dataset.h"
#include "qfae/dist/launch.h"
#include "qfae/evaluate/eval_report.h"
#include "qfae/evaluate/evaluate_split.h"
#include "qfae/report/summary_page.h"
#include "qfae/run/checkpoint.h"
#include "qfae/run/run_dir.h"
#include "qfae/run/stop_signal.h"
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
  DistOptions dist;
};

// This process's data-parallel job: a Communicator when a launcher (or --nproc) made it one of
// several ranks.
struct Job {
  dist::World world = dist::world_from_environment();
  std::unique_ptr<dist::Communicator> comm;
  bool leader() const { return world.leader(); }
};

// One checkpoint to evaluate: where its weights are, its resolved config, where results go.
struct EvalPlan {
  std::string arg;  // --checkpoint as given
  CheckpointPaths found;
  config::LoadedConfig loaded;
  std::string out_dir;
};

EvalPlan plan_one(const EvalOptions& o, const std::string& checkpoint_arg,
                  const std::vector<std::string>& extra_configs) {
  EvalPlan plan;
  plan.arg = checkpoint_arg;
  plan.found = find_checkpoint_paths(checkpoint_arg, o.which);
  plan.loaded =
      resolve_checkpoint_config(o.common, plan.found, extra_configs, /*check_files=*/true);
  return plan;
}

// Results folders: -o itself (one checkpoint), <run>/eval/<split>-<which> (one, no -o), or
// <-o>/<name>-<split>-<which> (several). Runs that would share a folder (several runs of one
// config, the usual comparison) get their run folder's name added, then their position.
void assign_out_dirs(const EvalOptions& o, std::vector<EvalPlan*>& plans) {
  const auto leaf = [&](const EvalPlan& p) {
    return o.split + "-" + checkpoint_label(p.found.checkpoint);
  };
  if (o.checkpoints.size() == 1) {
    auto& p = *plans.front();
    p.out_dir = !o.common.output_dir.empty() ? o.common.output_dir
                                             : (fs::path(p.found.run) / "eval" / leaf(p)).string();
    return;
  }
  const auto plain = [&](const EvalPlan& p) { return p.loaded.config.name + "-" + leaf(p); };
  const auto with_run = [&](const EvalPlan& p) {
    std::error_code ec;
    auto run = fs::weakly_canonical(p.found.run, ec);  // "latest" is a link
    if (ec) run = p.found.run;
    return p.loaded.config.name + "-" + run.filename().string() + "-" + leaf(p);
  };
  std::map<std::string, int> uses;
  for (const auto* p : plans) ++uses[plain(*p)];
  std::vector<std::string> names;
  for (const auto* p : plans) names.push_back(uses[plain(*p)] > 1 ? with_run(*p) : plain(*p));
  uses.clear();
  for (const auto& n : names) ++uses[n];
  for (size_t i = 0; i < plans.size(); ++i) {
    std::string name = names[i];
    if (uses[name] > 1) name += "-" + std::to_string(i + 1);  // the same run given twice
    plans[i]->out_dir = run::child_dir(o.common.output_dir, name, "--checkpoint " + plans[i]->arg);
  }
}

nlohmann::json evaluate_one(const EvalOptions& o, const EvalPlan& plan, Job& job) {
  const auto& cfg = plan.loaded.config;
  init_threads(dist::threads_per_rank(static_cast<int>(cfg.threads), job.world,
                                      usable_cores()));
  const auto device = rank_device(resolve_device(cfg.device), job.world);
  if (job.world.distributed() && !job.comm) job.comm = join_world(job.world, device, o.dist);
  anomaly::AnomalyModel model(cfg, device);
  anomaly::prepare_for_scoring(model);
  const auto progress =
      run::load_checkpoint(plan.found.checkpoint, *model.autoencoder(), nullptr);
  const auto index = data::index_dataset(cfg.data, static_cast<uint64_t>(cfg.train.seed));
  const auto& samples = o.split == "val" ? index.val : index.test;

  evaluate::EvaluationOptions eo;
  // Recorded without links: runs/<name>/latest moves on to the next run.
  std::error_code ec;
  eo.checkpoint = fs::weakly_canonical(fs::absolute(plan.found.checkpoint), ec).string();
  if (ec) eo.checkpoint = fs::absolute(plan.found.checkpoint).lexically_normal().string();
  eo.split = o.split;
  eo.dataset_notes = index.notes;
  eo.out_dir = plan.out_dir;
  if (!o.no_threshold) eo.threshold = progress.threshold;
  eo.progress = !o.common.quiet;
  eo.comm = job.comm.get();
  log("eval")->info("{}: {} {} images from {} on {}", cfg.name, samples.size(), o.split,
                    cfg.data.root, device.str());
  evaluate::EvaluationResult result;
  try {
    result = evaluate::evaluate_split(model, samples, eo);
  } catch (const dist::RankLost&) {
    throw;
  } catch (const run::StopRequested&) {
    throw;
  } catch (const std::exception& e) {
    if (job.comm) job.comm->announce_failure(first_line(e.what()));  // the others quote it
    throw;
  }
  if (!job.leader()) return result.metrics;  // rank 0 writes and reports
  std::cout << result.summary << "\n";
  log("eval")->info("results in {} (report.html, metrics.json, scores.csv, maps/, roc.png, "
                    "pr.png)", eo.out_dir);
  return std::move(result.metrics);
}

// Exit code 128 + signal, with a line saying what was and was not written.
int stopped(const run::StopRequested& e, const std::string& out_dir, size_t done) {
  std::string line = std::string(e.what()) + ": nothing was written to " + out_dir +
                     " (an earlier result there is as it was)";
  if (done > 0) {
    line += "; the " + std::to_string(done) + " run(s) evaluated before are complete in their "
            "folders; no summary was written";
  }
  log("eval")->warn("{}", line);
  return 128 + e.signal_number();
}

// The checkpoint and --config counts: one --config per checkpoint, or none, or (one checkpoint)
// any number.
void check_request(const EvalOptions& o) {
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
}

// --nproc N: checked once here, then N ranks run this command without it.
int launch_ranks(const EvalOptions& o) {
  std::string device = "auto";
  if (o.checkpoints.size() == 1) {
    device = plan_one(o, o.checkpoints[0], o.common.configs).loaded.config.device;
  }
  check_launch(o.dist, device, 0);
  set_log_verbosity(o.common.quiet ? -1 : o.common.verbose);
  return dist::launch_local(o.dist.nproc, dist::without_nproc(command_line()), o.dist.timeout_s);
}

// Every checkpoint's plan, before any is evaluated (the results folders depend on all the
// names). One that cannot be planned is, with several, logged and counted in `failures`, the
// others going on; with one, its error is the command's.
std::vector<EvalPlan> plan_all(const EvalOptions& o, int& failures) {
  const bool several = o.checkpoints.size() > 1;
  std::vector<EvalPlan> planned;
  for (size_t i = 0; i < o.checkpoints.size(); ++i) {
    std::vector<std::string> extra;
    if (!several) {
      extra = o.common.configs;
    } else if (!o.common.configs.empty()) {
      extra.push_back(o.common.configs[i]);
    }
    try {
      planned.push_back(plan_one(o, o.checkpoints[i], extra));
    } catch (const UserError& e) {
      if (!several) throw;
      ++failures;
      log("eval")->error("{}: {} (continuing with the others)", o.checkpoints[i], e.what());
    }
  }
  if (planned.empty()) throw UserError("no checkpoint could be evaluated");
  return planned;
}

// Several checkpoints' summary folder: -o, or runs/eval-summary/<timestamp> (made here; the
// caller removes it again if no result comes into it). Rank 0's; "" on the other ranks. An
// earlier summary there would describe folders that are about to be replaced: it goes now, and a
// new one is written once every run is done (none if the batch is stopped).
std::string summary_dir(const EvalOptions& o, const Job& job) {
  if (!job.leader()) return {};
  const std::string dir = o.common.output_dir.empty()
                              ? run::reserve_run_dir(config::Config{}.output_dir, "eval-summary")
                              : o.common.output_dir;
  for (const char* table : {"summary.md", "summary.csv"}) {
    std::error_code ec;
    if (fs::remove(fs::path(dir) / table, ec)) {
      log("eval")->info("removed the earlier {}/{}: its runs' folders are being replaced", dir,
                        table);
    }
  }
  return dir;
}

// One checkpoint is the n = 1 case of several: its results go to -o itself (or into its run),
// its errors are the command's, and there is no summary.
int run_eval(const EvalOptions& o) {
  check_request(o);
  Job job;
  check_nproc(o.dist.nproc, job.world);
  if (o.dist.nproc > 1) return launch_ranks(o);
  const run::StopSignalScope stop_handlers;  // SIGINT/SIGTERM now only set the flag polled below
  const bool several = o.checkpoints.size() > 1;
  int failures = 0;
  auto planned = plan_all(o, failures);
  const bool new_dir = several && o.common.output_dir.empty();
  EvalOptions with_dir = o;
  if (several) with_dir.common.output_dir = summary_dir(o, job);
  const std::string dir = with_dir.common.output_dir;
  RemoveIfEmpty unused(new_dir ? dir : "");
  std::vector<EvalPlan*> plans;
  for (auto& p : planned) plans.push_back(&p);
  assign_out_dirs(with_dir, plans);
  std::vector<nlohmann::json> runs;
  for (const auto& plan : planned) {
    try {
      runs.push_back(evaluate_one(o, plan, job));
      runs.back()["results"] = fs::path(plan.out_dir).filename().string();  // inside `dir`
    } catch (const UserError& e) {
      // Data-parallel, one rank's failure (an image it read) is not the others': stop all.
      if (!several || job.world.distributed()) throw;
      ++failures;
      log("eval")->error("{}: {} (continuing with the others)", plan.arg, e.what());
    } catch (const run::StopRequested& e) {
      return stopped(e, plan.out_dir, runs.size());
    }
  }
  if (!several) return 0;
  if (runs.empty()) throw UserError("no checkpoint could be evaluated");
  if (!job.leader()) return 0;
  std::cout << "\n" << evaluate::write_summary_tables(dir, runs);
  report::write_summary_page(dir);
  if (new_dir) run::point_latest(dir);
  log("eval")->info("summary of {} runs in {}/summary.md, summary.csv and report.html{}",
                    runs.size(), dir,
                    failures ? " (" + std::to_string(failures) + " failed, see above)" : "");
  return failures ? kExitBadInput : 0;
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
  add_no_verify_option(*sub);
  sub->add_option("--checkpoint", o->checkpoints,
                  "Run folder or checkpoint folder; repeat for batch evaluation")
      ->check(CLI::ExistingPath);
  sub->add_option("--split", o->split, "Which split to evaluate")
      ->check(CLI::IsMember({"test", "val"}));
  sub->add_option("--which", o->which, "Checkpoint of a run folder to use")
      ->check(CLI::IsMember({"last", "best"}));
  sub->add_flag("--no-threshold", o->no_threshold,
                "Do not apply the checkpoint's calibrated threshold (no 'anomalous' column)");
  add_dist_options(*sub, o->dist,
                   "Score data-parallel with this many processes on this machine (one per GPU); "
                   "rank 0 gathers the scores and maps and writes the same files as one process. "
                   "Under torchrun or srun qfae reads their environment instead");
  sub->footer("-o/--output-dir: the results folder (one checkpoint) or the summary folder "
              "(several; each run's results go in <dir>/<name>-<split>-<which>, with the run "
              "folder's name after <name> when several runs share a name).\n"
              "A results folder is replaced only by a complete new one: on an error or on "
              "SIGINT/SIGTERM (exit 130/143) the earlier one is left as it was.\n"
              "Keys fixed by training (model.*, backbone.taps, data.image_size, ...) cannot be "
              "changed with --set or --config here.");
  return {sub, [o] { return run_eval(*o); }};
}

}  // namespace qfae::cli
