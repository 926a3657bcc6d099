// `qfae train`: trains the Q-Former autoencoder on a dataset's normal images, in one process or
// as one rank of a data-parallel job (torchrun, srun, or --nproc).
#include <filesystem>
#include <memory>

#include "qfae/cli/app.h"
#include "qfae/cli/common.h"
#include "qfae/cli/dist_options.h"
#include "qfae/config/loader.h"
#include "qfae/dist/launch.h"
#include "qfae/run/checkpoint.h"
#include "qfae/run/run_dir.h"
#include "qfae/train/trainer.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;

namespace qfae::cli {

namespace {
struct TrainOptions {
  CommonOptions common;
  std::string resume;
  std::string init_from;
  DistOptions dist;
};

int run_train(const TrainOptions& o) {
  const auto world = dist::world_from_environment();
  check_nproc(o.dist.nproc, world);
  std::string run_dir;
  std::optional<std::string> resume_from;
  CommonOptions common = o.common;
  if (!o.init_from.empty()) {
    if (!o.resume.empty()) {
      throw UserError("--init-from " + o.init_from + " and --resume " + o.resume +
                      ": a resumed run continues from its own weights; give one of them");
    }
    // A config key, so the run's config.yaml records where its weights came from.
    common.sets.push_back("train.init_from=" + o.init_from);
  }
  if (!o.resume.empty()) {
    // The run's own resolved config comes first; files and flags given now still override it.
    const auto saved = fs::path(o.resume) / "config.yaml";
    if (!fs::is_regular_file(saved)) {
      throw UserError("--resume " + o.resume + ": not a run folder (no config.yaml in it)");
    }
    common.configs.insert(common.configs.begin(), saved.string());
    run_dir = o.resume;
    resume_from = run::find_checkpoint(o.resume, "last");
  }
  const auto loaded = resolve_config(common, /*check_files=*/true);
  const auto& cfg = loaded.config;
  if (!resume_from && !cfg.train.init_from.empty() && !fs::exists(cfg.train.init_from)) {
    throw UserError("train.init_from: '" + cfg.train.init_from + "' does not exist (expected a "
                    "run folder, a checkpoint or imported model folder, or a .safetensors file)");
  }
  // Checked once here, before any rank starts.
  if (o.dist.nproc > 1) {
    check_launch(o.dist, cfg.device, cfg.train.batch_size);
    return dist::launch_local(o.dist.nproc, dist::without_nproc(command_line()), o.dist.timeout_s);
  }
  const auto device = rank_device(resolve_device(cfg.device), world);
  log("train")->info("device {}, {} threads", device.str(), torch::get_num_threads());
  const auto comm = join_world(world, device, o.dist);
  try {
    // Everything is loaded and checked before the run folder exists: a run that cannot start
    // leaves no empty folder behind and does not move `latest`.
    train::Trainer trainer(cfg, device, resume_from, comm.get());
    if (!run_dir.empty() || !world.leader()) return trainer.fit(run_dir);
    const auto previous_latest = run::latest_run_target(cfg.output_dir, cfg.name);
    run::warn_if_latest_is_not_a_link(cfg.output_dir, cfg.name);
    // `latest` moves here with the first checkpoint (Trainer::save_checkpoint).
    run_dir = run::reserve_run_dir(cfg.output_dir, cfg.name);
    const auto id = run::folder_id(run_dir);
    try {
      return trainer.fit(run_dir);
    } catch (...) {
      // Failed before its first checkpoint: nothing in it is worth keeping or pointing at.
      if (!trainer.saved_checkpoint()) run::discard_run_dir(run_dir, id, previous_latest);
      throw;
    }
  } catch (const dist::RankLost&) {
    throw;
  } catch (const std::exception& e) {
    // The other ranks' error names this one and quotes why.
    if (comm) comm->announce_failure(first_line(e.what()));
    throw;
  }
}
}  // namespace

Command add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Train on normal images: qfae train --config "
                                          "configs/brats.yaml");
  auto o = std::make_shared<TrainOptions>();
  add_common_options(*sub, o->common);
  add_no_verify_option(*sub);
  sub->add_option("--resume", o->resume,
                  "Continue the run in this run folder from its last checkpoint "
                  "(exit codes 130/143 mean a run was stopped by SIGINT/SIGTERM and saved)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--init-from", o->init_from,
                  "Start from these weights with a fresh optimizer and schedule: a run folder "
                  "(its last checkpoint), a checkpoint folder, a model folder from "
                  "scripts/import_reference.py, or a .safetensors file. Names and shapes must "
                  "match the config's model. Recorded as train.init_from")
      ->check(CLI::ExistingPath);
  add_dist_options(*sub, o->dist,
                   "Train data-parallel with this many processes on this machine (one per GPU; "
                   "on the CPU they share the cores). torchrun --no-python --nproc-per-node N "
                   "qfae train ... and srun qfae train ... need no flag: qfae reads their "
                   "environment. train.batch_size is the global batch");
  return {sub, [o] { return run_train(*o); }};
}

}  // namespace qfae::cli
