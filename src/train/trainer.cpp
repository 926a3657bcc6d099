// The training loop: data, Adam + OneCycle, validation, checkpoints, stop and resume.
#include "qfae/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/config/loader.h"
#include "qfae/loss/perceptual_maps.h"
#include "qfae/metrics/auroc.h"
#include "qfae/report/run_page.h"
#include "qfae/run/stop_signal.h"
#include "qfae/scoring/scoring_pass.h"
#include "qfae/train/progress_reporter.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/math.h"

namespace fs = std::filesystem;

namespace qfae::train {
data::LoaderOptions training_loader_options(const config::Config& config, bool pin_memory) {
  data::LoaderOptions o;
  o.batch_size = config.train.batch_size;
  o.shuffle = true;
  o.drop_last = true;
  o.augment = config.data.augment;
  o.seed = static_cast<uint64_t>(config.train.seed);
  o.pin_memory = pin_memory;
  return o;
}

Trainer::Trainer(const config::Config& config, torch::Device device,
                 const std::optional<std::string>& resume_from, dist::Communicator* comm)
    : config_(config), device_(device), comm_(comm && comm->size() > 1 ? comm : nullptr) {
  tty_ = leader() && ::isatty(STDERR_FILENO) != 0;
  open_data();
  build_model();
  if (resume_from) {
    // Every rank reads the same checkpoint: weights, Adam's moments and the position.
    progress_ = run::load_checkpoint(*resume_from, *model_->autoencoder(), &step_->optimizer(),
                                     device_);
    resumed_ = true;
    log("train")->info("resumed from {} at step {} (epoch {}, batch {})", *resume_from,
                       progress_.step, progress_.epoch, progress_.batch);
  } else if (!config_.train.init_from.empty()) {
    // Weights only: Adam's moments, the schedule and the step count start afresh.
    const auto file = with_key("train.init_from", [&] {
      const auto found = run::find_weights(config_.train.init_from);
      run::load_weights(found, *model_->autoencoder());
      return found;
    });
    log("train")->info("weights from {}; fresh optimizer and schedule", file);
  }
  if (comm_) {
    // Rank 0's weights everywhere (the seeded initialisation gives the same anyway).
    std::vector<torch::Tensor> tensors;
    for (const auto& p : model_->autoencoder()->parameters()) tensors.push_back(p.data());
    for (const auto& b : model_->autoencoder()->buffers()) tensors.push_back(b);
    comm_->broadcast(tensors);
    comm_->set_progress(progress_.step);
  }
}

void Trainer::open_data() {
  const auto& t = config_.train;
  index_ = data::index_dataset(config_.data, static_cast<uint64_t>(t.seed), t.val_on_test);
  if (t.val_on_test) {
    log("train")->warn("train.val_on_test: validating on the test split; its numbers are no "
                       "longer an unbiased test");
  }
  if (index_.train.empty()) {
    throw UserError("data.root: '" + config_.data.root + "' has no training images");
  }
  auto train_options = training_loader_options(config_, device_.is_cuda());
  if (comm_) {
    if (t.batch_size % comm_->size() != 0) {
      throw UserError("train.batch_size: " + std::to_string(t.batch_size) +
                      " is the global batch and must divide by the " +
                      std::to_string(comm_->size()) + " ranks of this job (" +
                      comm_->world().launcher + ")");
    }
    train_options.shard = comm_->rank();
    train_options.shards = comm_->size();
  }
  train_loader_ = std::make_unique<data::Loader>(index_.train, config_.data, train_options);
  steps_per_epoch_ = train_loader_->batches_per_epoch();
  if (steps_per_epoch_ == 0) {
    throw UserError("train.batch_size: " + std::to_string(t.batch_size) + " is larger than the " +
                    std::to_string(index_.train.size()) +
                    " training images (the last partial batch is dropped in training)");
  }
  if (!index_.val.empty()) {
    data::LoaderOptions val_opts;
    val_opts.batch_size = config_.eval.batch_size;
    val_opts.pin_memory = device_.is_cuda();
    // Data-parallel: the ranks score blocks of the split and every rank gets every row.
    val_pass_ = std::make_unique<scoring::ScoringPass>(index_.val, config_.data, val_opts, comm_);
    for (const auto& sample : index_.val) {
      (sample.label ? val_has_anomalies_ : val_has_normals_) = true;
    }
  }
  log("train")->info("{} layout: {} train, {} val, {} test images; {} steps per epoch",
                     index_.layout, index_.train.size(), index_.val.size(), index_.test.size(),
                     steps_per_epoch_);
}

void Trainer::build_model() {
  const auto& t = config_.train;
  train_precision_ = anomaly::resolve_precision_warning(t.precision, device_, "train.precision");
  // Said once here for validation; the scorer built at each validation resolves it quietly.
  anomaly::resolve_precision_warning(config_.eval.precision, device_, "eval.precision");
  model_ = std::make_unique<anomaly::AnomalyModel>(config_, device_);
  // Validation shares these weights: under bf16 training it runs with bf16 frozen networks.
  model_->set_frozen_dtype(model_->frozen_dtype_for(train_precision_));
  const int64_t total_steps = t.epochs * steps_per_epoch_;
  // The steps per epoch come from the data, so validate() cannot see a one-step warm-up coming.
  step_ = with_key("train.warmup", [&] {
    return std::make_unique<TrainStep>(*model_, total_steps, train_precision_, comm_);
  });
  stop_step_ = t.max_steps > 0 ? std::min(t.max_steps, total_steps) : total_steps;
}

void Trainer::open_run(const std::string& run_dir) {
  run_dir_ = run_dir;
  if (!leader()) return;
  lock_ = std::make_unique<run::RunLock>(run_dir_);
  const auto metrics_path = (fs::path(run_dir_) / "metrics.jsonl").string();
  if (resumed_) run::truncate_metrics_after(metrics_path, progress_.step);
  config::save_yaml(config_, (fs::path(run_dir_) / "config.yaml").string());
  write_file_atomic((fs::path(run_dir_) / "split.csv").string(), data::split_table(index_));
  metrics_ = run::JsonlWriter(metrics_path);
}

torch::Tensor Trainer::train_step(const data::Batch& batch) {
  model_->autoencoder()->train();
  // Pinned on CUDA (the loader's pin_memory): the copy does not wait for the device.
  // Data-parallel, a part whose images were all skipped is empty: the rank still takes the step.
  const auto images = batch.images.defined()
                          ? batch.images.to(device_, batch.images.scalar_type(), /*non_blocking=*/true)
                          : torch::Tensor();
  auto loss = (*step_)(images, progress_.step);
  ++progress_.step;
  return loss;
}

ValidationResult Trainer::evaluate() {
  ValidationResult result;
  if (!val_pass_) return result;
  auto& ae = model_->autoencoder();
  ae->eval();
  torch::NoGradGuard no_grad;
  anomaly::AnomalyScorer scorer(*model_, config_.eval);
  // Calibrated as `qfae eval` and `qfae infer` will score: with the frozen networks in
  // eval.precision's dtype (float32 as loaded after bf16 training), back to training's after.
  const anomaly::FrozenDtypeScope frozen(*model_, model_->frozen_dtype_for(scorer.precision()));
  // The loss is summed on the device and read once at the end.
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device_));
  int64_t count = 0;
  const auto submit = [&](const torch::Tensor& batch) {
    const auto images = batch.to(device_, batch.scalar_type(), /*non_blocking=*/true);
    anomaly::PrecisionScope scope(scorer.precision(), device_);
    const auto x_hat = model_->reconstruct(images);
    loss_sum += model_->training_loss(images, x_hat).to(torch::kDouble) * images.size(0);
    count += images.size(0);
    return scorer.submit_reconstruction(images, x_hat);
  };
  std::vector<double> scores, normal_scores;
  std::vector<int> labels;
  bool normals_finite = true;
  double map_scale = -std::numeric_limits<double>::infinity();
  scoring::PassOptions po;
  po.everyone = true;     // every rank gets the same result
  po.stoppable = false;   // a stop is acted on between training steps
  val_pass_->run(submit, po, [&](const scoring::ScoredRows& scored) {
    for (const auto& row : scored.rows) {
      const int label = index_.val[row.position].label;
      scores.push_back(row.score);
      labels.push_back(label);
      if (label == 0) {
        normal_scores.push_back(row.score);
        normals_finite = normals_finite && row.finite;
        map_scale = std::max(map_scale, row.map_max);
      }
    }
  });
  ae->train();
  double loss_total = loss_sum.item<double>(), images = static_cast<double>(count);
  if (comm_) {
    const auto sums = comm_->sum({loss_total, images});
    loss_total = sums[0];
    images = sums[1];
  }
  result.count = static_cast<int64_t>(images);
  if (result.count) result.loss = loss_total / images;
  if (val_has_anomalies_ && val_has_normals_ && !scores.empty()) {
    result.image_auroc = metrics::auroc(scores, labels);
  }
  if (!normal_scores.empty() && normals_finite) {
    result.threshold = percentile(normal_scores, config_.eval.threshold_percentile);
    result.map_scale = map_scale;
  }
  return result;
}

void Trainer::save_checkpoint(const std::string& name) {
  if (!leader()) return;
  const auto dir = (fs::path(run_dir_) / "checkpoints" / name).string();
  lock_->check();  // never re-create half a run in a folder that was deleted or replaced
  run::save_checkpoint(dir, *model_->autoencoder(), &step_->optimizer(), progress_, config_);
  // A new run becomes `latest` with its first checkpoint: `latest` always has one to resume from.
  if (!saved_checkpoint_ && !resumed_) run::point_latest(run_dir_);
  saved_checkpoint_ = true;
}

bool Trainer::weights_finite() {
  torch::NoGradGuard no_grad;
  auto all = torch::ones({}, torch::TensorOptions().dtype(torch::kBool).device(device_));
  for (const auto& p : model_->autoencoder()->parameters()) {
    if (p.requires_grad()) all = all.logical_and(torch::isfinite(p).all());
  }
  return all.item<bool>();  // one host sync per checkpoint
}

int Trainer::diverged(const std::string& what) {
  if (tty_) std::fprintf(stderr, "\n");
  record({{"event", "diverged"}, {"step", progress_.step}, {"epoch", progress_.epoch},
                  {"what", what}});
  write_skipped();
  write_page(/*running=*/false);
  std::string kept = "no checkpoint was saved before it (" + run_dir_ + " keeps its metrics.jsonl; "
                     "`latest` did not move to it)";
  if (saved_checkpoint_ || resumed_) {
    const auto last = (fs::path(run_dir_) / "checkpoints" / "last").string();
    kept = "kept the last good checkpoint " + run::find_checkpoint(last);
  }
  log("train")->error("training diverged at step {} (epoch {}): {}; {}. Lower train.lr (now {}) "
                      "or check data.mean / data.std and the images", progress_.step,
                      progress_.epoch + 1, what, kept, config_.train.lr);
  return kExitDiverged;
}

void Trainer::record(const nlohmann::json& event) {
  if (!leader()) return;
  lock_->check();
  metrics_.write(event);
}

double Trainer::mean_loss(const torch::Tensor& loss_sum, int64_t count) {
  const double mean = loss_sum.item<double>() / static_cast<double>(count);
  if (!comm_) return mean;
  return comm_->sum({mean})[0] / comm_->size();  // equal parts: the mean of the ranks' means
}

int Trainer::stop_after_step() {
  if (!comm_) return run::stop_signal();
  comm_->set_progress(progress_.step);
  return comm_->agree_stop(run::stop_signal());
}

void Trainer::log_step(double loss, double lr, double beta1, double images_per_s) {
  record({{"event", "train"}, {"step", progress_.step}, {"epoch", progress_.epoch},
                  {"loss", loss}, {"lr", lr}, {"beta1", beta1}, {"images_per_s", images_per_s}});
}

Trainer::EpochEnd Trainer::run_epoch() {
  train_loader_->start_epoch(progress_.epoch);
  data::Batch batch;
  // A resumed epoch skips the batches already trained on (the order is fixed by the seed).
  while (train_loader_->batches_consumed() < progress_.batch && train_loader_->next(batch)) {
  }
  ProgressReporter reporter(config_.train.epochs, stop_step_, config_.train.batch_size, tty_);
  reporter.start_epoch(progress_.epoch);
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device_));
  int64_t losses = 0;
  double shown_loss = std::numeric_limits<double>::quiet_NaN();  // none logged yet this epoch
  while (progress_.step < stop_step_) {
    if (!train_loader_->next(batch)) {
      // The plan's last batches were passed over: all their images were skipped.
      progress_.batch = steps_per_epoch_;
      break;
    }
    const auto [lr, beta1] = step_->schedule().at(progress_.step);  // what this step trains with
    loss_sum += train_step(batch);
    ++losses;
    progress_.batch = train_loader_->batches_consumed();
    // All ranks' images (each reads its part of every global batch).
    reporter.add_images(batch.images.defined() ? batch.images.size(0) * (comm_ ? comm_->size() : 1)
                                               : 0);
    const bool epoch_end = progress_.batch == steps_per_epoch_;
    const bool log_now = progress_.step % config_.train.log_every == 0 || epoch_end ||
                         progress_.step == stop_step_;
    // The loss is read back from the device (a host sync) once per logged interval only; the
    // terminal bar refreshes a few times a second in between with the last logged loss.
    if (log_now) {
      shown_loss = mean_loss(loss_sum, losses);
      if (!std::isfinite(shown_loss)) return EpochEnd::kDiverged;
      log_step(shown_loss, lr, beta1, reporter.rate());
      loss_sum.zero_();
      losses = 0;
    }
    if (log_now || reporter.bar_due()) {
      reporter.show(progress_.step, shown_loss, lr, log_now, epoch_end);
    }
    if ((stop_signal_ = stop_after_step()) != 0) {
      // The steps since the last log are checked before the stop saves them.
      const bool finite = losses == 0 || std::isfinite(mean_loss(loss_sum, losses));
      return finite ? EpochEnd::kStopped : EpochEnd::kDiverged;
    }
  }
  return EpochEnd::kComplete;
}

int Trainer::fit(const std::string& run_dir) {
  open_run(run_dir);
  // For the run: SIGINT/SIGTERM only set the flag run_epoch() polls after each step.
  const run::StopSignalScope stop_handlers;
  log("train")->info("run folder {}; {} trainable parameters; {} steps", run_dir_,
                     model::count_trainable_parameters(*model_->autoencoder()), stop_step_);
  while (progress_.step < stop_step_ && progress_.epoch < config_.train.epochs) {
    const auto end = run_epoch();
    if (end == EpochEnd::kDiverged) return diverged("the training loss is not finite");
    if (!weights_finite()) return diverged("the weights are no longer finite");
    if (end == EpochEnd::kStopped) {
      save_checkpoint("last");
      write_skipped();
      write_page(/*running=*/false);
      // Data-parallel: the signal any rank saw; every rank waits for rank 0's save, so that no
      // launcher tears rank 0 down while it writes.
      const int sig = stop_signal_;
      if (comm_) comm_->barrier();
      if (tty_) std::fprintf(stderr, "\n");
      if (leader()) {
        log("train")->warn("stopped by signal {} at step {}; saved {}/checkpoints/last (resume "
                           "with qfae train --resume {})", sig, progress_.step, run_dir_, run_dir_);
      } else {
        log("train")->warn("stopped by signal {} at step {} with every rank; rank 0 saved the run",
                           sig, progress_.step);
      }
      return 128 + sig;
    }
    const bool epoch_done = progress_.batch >= steps_per_epoch_;
    // A batch whose images were all skipped (data.on_bad_image: skip) takes no step: the last
    // epoch can end short of the planned steps.
    const bool finished = progress_.step >= stop_step_ ||
                          (epoch_done && progress_.epoch + 1 >= config_.train.epochs);
    if (!after_epoch(epoch_done, finished)) return diverged("the validation loss is not finite");
  }
  write_skipped();
  if (comm_) comm_->barrier();  // rank 0's last checkpoint is written before any rank exits
  if (leader()) lock_->check();  // "done" only while the run's records are all in place
  log("train")->info("done: {} steps; checkpoints in {}/checkpoints", progress_.step, run_dir_);
  return 0;
}

bool Trainer::after_epoch(bool epoch_done, bool finished) {
  const int64_t done_epochs = progress_.epoch + (epoch_done ? 1 : 0);
  if (epoch_done) {
    progress_.epoch += 1;
    progress_.batch = 0;
  }
  const auto& t = config_.train;
  bool validated = false;
  if ((t.eval_every > 0 && epoch_done && done_epochs % t.eval_every == 0) || finished) {
    const auto val = evaluate();
    if (val.count > 0 && !std::isfinite(val.loss)) return false;
    if (std::isfinite(val.loss)) {
      nlohmann::json event = {{"event", "val"}, {"step", progress_.step}, {"epoch", done_epochs},
                              {"loss", val.loss}, {"lr", step_->schedule().at(progress_.step).lr}};
      if (std::isfinite(val.image_auroc)) event["image_auroc"] = val.image_auroc;
      if (std::isfinite(val.threshold)) event["threshold"] = val.threshold;
      progress_.threshold = val.threshold;
      progress_.map_scale = val.map_scale;
      record(event);
      validated = true;
      if (std::isfinite(val.image_auroc)) {
        log("train")->info("validation loss {:.5f}, image AUROC {:.4f} after epoch {}", val.loss,
                           val.image_auroc, done_epochs);
      } else {
        log("train")->info("validation loss {:.5f} after epoch {}", val.loss, done_epochs);
      }
      // The best checkpoint is chosen on the validation loss: the split is normal images
      // unless the layout provides anomalous validation images.
      if (val.loss < progress_.best_val_loss) {
        progress_.best_val_loss = val.loss;
        progress_.best_step = progress_.step;
        save_checkpoint("best");
      }
    }
  }
  if ((t.checkpoint_every > 0 && epoch_done && done_epochs % t.checkpoint_every == 0) ||
      finished) {
    save_checkpoint("last");
  }
  if (validated || finished) write_page(/*running=*/!finished);
  return true;
}

void Trainer::write_page(bool running) const {
  if (!leader()) return;
  try {
    report::write_run_page(run_dir_, running);
  } catch (const std::exception& e) {
    log("train")->warn("could not write {}/report.html: {} (training goes on)", run_dir_,
                       first_line(e.what()));
  }
}

void Trainer::write_skipped() const {
  if (!leader()) return;
  std::string text;
  const auto add = [&text](const std::vector<data::SkippedImage>& skipped) {
    for (const auto& s : skipped) text += tsv_field(s.path) + "\t" + tsv_field(s.reason) + "\n";
  };
  add(index_.skipped);  // left out by the dataset index, then by the loaders
  add(train_loader_->skipped());
  if (val_pass_) add(val_pass_->skipped());
  if (text.empty()) return;
  lock_->check();
  write_file_atomic((fs::path(run_dir_) / "skipped_images.tsv").string(), text);
}

}  // namespace qfae::train
