// Training: Adam + OneCycle on the perceptual loss, periodic validation, best/last checkpoints,
// metrics.jsonl, a clean stop on SIGINT/SIGTERM and bit-for-bit resume.
#pragma once
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/config/config.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/dist/communicator.h"
#include "qfae/run/checkpoint.h"
#include "qfae/run/run_dir.h"
#include "qfae/scoring/scoring_pass.h"
#include "qfae/train/train_step.h"

namespace qfae::train {

// The training loader's options: shuffled, the last partial batch dropped, augmented as
// data.augment says, seeded by train.seed. What Trainer reads with and `qfae bench --mode loader`
// times.
data::LoaderOptions training_loader_options(const config::Config& config, bool pin_memory);

struct ValidationResult {
  double loss = std::numeric_limits<double>::quiet_NaN();         // mean training loss
  double image_auroc = std::numeric_limits<double>::quiet_NaN();  // when val has both classes
  double threshold = std::numeric_limits<double>::quiet_NaN();    // calibrated on val normals
  double map_scale = std::numeric_limits<double>::quiet_NaN();    // max of their pixel maps
  int64_t count = 0;                                               // images validated
};

// Exit codes of fit(): 0 finished, 130 stopped by SIGINT, 143 by SIGTERM (state saved),
// kExitDiverged when the loss or the weights stopped being finite (the last good checkpoint kept).
//
// Data-parallel (a Communicator of several ranks): every rank builds the same model, takes rank
// 0's weights, and trains on its part of each global batch of train.batch_size images; gradients
// are averaged, so the weights stay the same on every rank. Validation shares the images out and
// gathers the scores. A stop signal on any rank stops all after the same step. Only rank 0
// writes the run folder.
class Trainer {
 public:
  // Loads the data index, the backbones and, with `resume_from` (a checkpoint folder), the state
  // to continue from. Writes nothing: a run that cannot start leaves no trace. `comm`: this
  // process's data-parallel job (null: a single process).
  Trainer(const config::Config& config, torch::Device device,
          const std::optional<std::string>& resume_from = std::nullopt,
          dist::Communicator* comm = nullptr);

  // Trains in `run_dir` (it exists: create_run_dir, or the resumed run's folder), holding its
  // RunLock throughout. Ranks other than 0 only read it (empty is fine for them).
  int fit(const std::string& run_dir);
  // Whether fit() has written a checkpoint (a failure before that leaves nothing worth keeping).
  bool saved_checkpoint() const { return saved_checkpoint_; }

  // One optimizer step on a batch; returns the loss as a 0-d tensor (no host sync).
  torch::Tensor train_step(const data::Batch& batch);
  // Mean training loss over the validation split (no augmentation, no gradient); with the
  // test-time settings (AnomalyScorer), the image AUROC when the split holds both classes, and
  // the decision threshold (eval.threshold_percentile of the normal images' scores) and colour
  // scale (max of their maps) that later checkpoints carry.
  ValidationResult evaluate();
  void save_checkpoint(const std::string& name);

  const run::TrainProgress& progress() const { return progress_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return step_->schedule().options().total_steps; }
  anomaly::AnomalyModel& model() { return *model_; }

 private:
  enum class EpochEnd { kComplete, kStopped, kDiverged };
  // The constructor's steps: the data index and its loaders; the model and its optimisation.
  void open_data();
  void build_model();
  // Runs the rest of the current epoch, up to the step limit, a stop signal or a non-finite loss.
  EpochEnd run_epoch();
  // Locks the run folder, then writes config.yaml and opens metrics.jsonl (cut back to the
  // resumed step when resuming).
  void open_run(const std::string& run_dir);
  // Validation, the best checkpoint and the periodic `last` after an epoch (or the last step);
  // false when validation diverged.
  bool after_epoch(bool epoch_done, bool finished);
  bool weights_finite();
  // Logs the divergence and returns kExitDiverged; nothing of the diverged state is saved.
  int diverged(const std::string& what);
  void log_step(double loss, double lr, double beta1, double images_per_s);
  // metrics.jsonl, on rank 0.
  void record(const nlohmann::json& event);
  // The mean of the losses summed in `loss_sum` over `count` steps, over all ranks (a host sync).
  double mean_loss(const torch::Tensor& loss_sum, int64_t count);
  // The stop signal to act on after this step: every rank's, agreed on when data-parallel.
  int stop_after_step();
  bool leader() const { return !comm_ || comm_->leader(); }
  void write_skipped() const;
  // report.html in the run folder (report/run_page.h), on rank 0; a page that cannot be written
  // is a warning, never the end of the run.
  void write_page(bool running) const;

  config::Config config_;
  std::string run_dir_;
  torch::Device device_;
  std::unique_ptr<anomaly::AnomalyModel> model_;
  data::DatasetIndex index_;
  std::unique_ptr<data::Loader> train_loader_;
  std::unique_ptr<scoring::ScoringPass> val_pass_;  // validation, when the split has images
  std::unique_ptr<TrainStep> step_;  // Adam + OneCycle
  int64_t steps_per_epoch_ = 0;
  int64_t stop_step_ = 0;  // min(total steps, max_steps)
  run::TrainProgress progress_;
  run::JsonlWriter metrics_;
  bool tty_ = false;
  anomaly::Precision train_precision_ = anomaly::Precision::kFp32;
  bool val_has_normals_ = false, val_has_anomalies_ = false;  // what the validation split holds
  bool resumed_ = false, saved_checkpoint_ = false;
  int stop_signal_ = 0;  // the signal that stopped run_epoch()
  std::unique_ptr<run::RunLock> lock_;
  dist::Communicator* comm_ = nullptr;
};

}  // namespace qfae::train
