// Training: Adam + OneCycle on the perceptual loss, periodic validation, best/last checkpoints,
// metrics.jsonl, a clean stop on SIGINT/SIGTERM and bit-for-bit resume.
#pragma once
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "qfae/config/config.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/engine/checkpoint.h"
#include "qfae/engine/one_cycle.h"
#include "qfae/engine/run_dir.h"
#include "qfae/engine/system.h"

namespace qfae::engine {

struct ValidationResult {
  double loss = std::numeric_limits<double>::quiet_NaN();         // mean training loss
  double image_auroc = std::numeric_limits<double>::quiet_NaN();  // when val has both classes
  double threshold = std::numeric_limits<double>::quiet_NaN();    // calibrated on val normals
  double map_scale = std::numeric_limits<double>::quiet_NaN();    // max of their pixel maps
};

// Exit codes of fit(): 0 finished, 130 stopped by SIGINT, 143 by SIGTERM (state saved).
class Trainer {
 public:
  // `run_dir` exists already (create_run_dir); `resume_from` is a checkpoint folder to continue.
  Trainer(const config::Config& config, const std::string& run_dir, torch::Device device,
          const std::optional<std::string>& resume_from = std::nullopt);

  int fit();

  // One optimizer step on a batch; returns the loss as a 0-d tensor (no host sync).
  torch::Tensor train_step(const data::Batch& batch);
  // Mean training loss over the validation split (no augmentation, no gradient); with the
  // test-time settings (AnomalyScorer), the image AUROC when the split holds both classes, and
  // the decision threshold (eval.threshold_percentile of the normal images' scores) and colour
  // scale (max of their maps) that later checkpoints carry.
  ValidationResult evaluate();
  void save_checkpoint(const std::string& name);

  const TrainProgress& progress() const { return progress_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return schedule_->options().total_steps; }
  System& system() { return *system_; }

 private:
  // Runs the rest of the current epoch; false when a stop signal ended it early.
  bool run_epoch();
  void log_step(double loss, double lr, double beta1, double images_per_s);
  void write_skipped() const;

  config::Config config_;
  std::string run_dir_;
  torch::Device device_;
  std::unique_ptr<System> system_;
  data::DatasetIndex index_;
  std::unique_ptr<data::Loader> train_loader_, val_loader_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::unique_ptr<OneCycle> schedule_;
  int64_t steps_per_epoch_ = 0;
  int64_t stop_step_ = 0;  // min(total steps, max_steps)
  TrainProgress progress_;
  JsonlWriter metrics_;
  bool tty_ = false;
  Precision train_precision_ = Precision::kFp32;
  bool val_has_normals_ = false, val_has_anomalies_ = false;  // what the validation split holds
};

}  // namespace qfae::engine
