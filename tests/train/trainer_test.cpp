// The trainer on a tiny synthetic dataset: it learns, writes its run folder, a run stopped and
// resumed gives the same losses, to the last bit, as one that ran straight through, and its
// validation AUROC is the Mann-Whitney count of the scorer's scores.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <fstream>
#include <limits>
#include <map>

#include "../support/run_binary.h"
#include "../support/test_device.h"
#include "../support/tiny_run.h"
#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/config/loader.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/run/checkpoint.h"
#include "qfae/train/trainer.h"
#include "qfae/util/cpu_features.h"
#include "qfae/util/error.h"
#include "qfae/util/math.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;
using qfae::test::TempDir;

namespace {

// step -> loss of every "train" event in a metrics.jsonl.
std::map<int64_t, double> train_losses(const fs::path& metrics) {
  std::map<int64_t, double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["event"] == "train") out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

int train(const qfae::config::Config& cfg, const std::string& run_dir,
          const std::optional<std::string>& resume = std::nullopt) {
  qfae::train::Trainer trainer(cfg, torch::kCPU, resume);
  return trainer.fit(run_dir);
}

}  // namespace

TEST(Trainer, LearnsAndWritesTheRunFolder) {
  TempDir dir;
  auto cfg = qfae::test::tiny_config(dir.path() / "data", {"train.epochs=6"}).config;
  const auto run = dir.path() / "run";
  fs::create_directories(run);
  EXPECT_EQ(train(cfg, run.string()), 0);
  const auto losses = train_losses(run / "metrics.jsonl");
  ASSERT_EQ(losses.size(), 24u);  // 4 steps per epoch, every step logged
  const double first = (losses.at(1) + losses.at(2)) / 2,
               last = (losses.at(23) + losses.at(24)) / 2;
  EXPECT_LT(last, 0.8 * first) << "first " << first << " last " << last;
  for (const char* f : {"config.yaml", "checkpoints/last/model.safetensors",
                        "checkpoints/last/optimizer.pt", "checkpoints/last/state.json",
                        "checkpoints/best/model.safetensors", "report.html"}) {
    EXPECT_TRUE(fs::exists(run / f)) << f;
  }
  // The training page, written at the end: no longer reloading itself.
  std::ifstream page(run / "report.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("id=\"loss-chart\""), std::string::npos);
  EXPECT_EQ(html.find("http-equiv=\"refresh\""), std::string::npos);
  // Every logged line carries the fields tools rely on.
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    for (const char* k : {"step", "epoch", "loss", "lr"}) EXPECT_TRUE(j.contains(k)) << line;
  }
}

TEST(Trainer, ResumeMidEpochRepeatsTheUninterruptedRunBitForBit) {
  TempDir dir;
  const auto base = qfae::test::tiny_config(dir.path() / "data").config;
  const auto straight = dir.path() / "straight", split = dir.path() / "split";
  fs::create_directories(straight);
  fs::create_directories(split);
  ASSERT_EQ(train(base, straight.string()), 0);

  // Same run, stopped after step 6 (mid epoch 2), then resumed from its last checkpoint.
  auto first = base;
  first.train.max_steps = 6;
  ASSERT_EQ(train(first, split.string()), 0);
  ASSERT_EQ(train(base, split.string(), (split / "checkpoints" / "last").string()), 0);

  const auto a = train_losses(straight / "metrics.jsonl");
  const auto b = train_losses(split / "metrics.jsonl");
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), a.size());
  for (const auto& [step, loss] : a) EXPECT_EQ(b.at(step), loss) << "step " << step;
}

// A checkpoint saved on the CPU resumes on QFAE_TEST_DEVICE (cuda: the optimizer state must land
// on the run's device, or Adam's first step mixes devices), and back. CPU-only machines skip it.
TEST(Trainer, ResumesOnAnotherDevice) {
  const auto device = qfae::test::test_device();
  if (!device.is_cuda()) GTEST_SKIP() << "QFAE_TEST_DEVICE is not a CUDA device";
  TempDir dir;
  const auto base = qfae::test::tiny_config(dir.path() / "data").config;
  const auto run = dir.path() / "run";
  fs::create_directories(run);
  auto first = base;
  first.train.max_steps = 3;
  ASSERT_EQ(train(first, run.string()), 0);  // on the CPU
  auto second = base;
  second.train.max_steps = 6;
  {
    qfae::train::Trainer trainer(second, device, (run / "checkpoints" / "last").string());
    ASSERT_EQ(trainer.fit(run.string()), 0);
  }
  ASSERT_EQ(train(base, run.string(), (run / "checkpoints" / "last").string()), 0);  // CPU again
  const auto losses = train_losses(run / "metrics.jsonl");
  ASSERT_EQ(losses.size(), 12u);
  for (const auto& [step, loss] : losses) EXPECT_TRUE(std::isfinite(loss)) << "step " << step;
}

// bf16 training on a device with bf16 units (CUDA with QFAE_TEST_DEVICE=cuda; a CPU with AMX or
// AVX512-BF16): the threshold and the colour scale stored at validation are the ones `qfae eval`
// computes, i.e. calibrated at eval.precision: with float32 frozen networks under the default
// fp32, not with training's bf16 ones; with bf16 frozen networks and autocast under bf16.
TEST(Trainer, Bf16TrainingCalibratesWithTheEvalPrecision) {
  const auto device = qfae::test::test_device();
  if (!device.is_cuda() && !qfae::cpu_bf16_support().supported) {
    GTEST_SKIP() << "no bf16 units: neither QFAE_TEST_DEVICE=cuda nor AMX / AVX512-BF16";
  }
  for (const std::string eval_precision : {"fp32", "bf16"}) {
    SCOPED_TRACE("eval.precision " + eval_precision);
    TempDir dir;
    const auto cfg =
        qfae::test::tiny_config(dir.path() / "data", {"train.precision=bf16", "train.epochs=1",
                                                      "eval.precision=" + eval_precision})
            .config;
    const auto run = dir.path() / "run";
    fs::create_directories(run);
    {
      qfae::train::Trainer trainer(cfg, device);
      ASSERT_EQ(trainer.fit(run.string()), 0);
    }
    qfae::anomaly::AnomalyModel model(cfg, device);
    const auto progress = qfae::run::load_checkpoint((run / "checkpoints" / "last").string(),
                                                     *model.autoencoder(), nullptr);
    ASSERT_TRUE(std::isfinite(progress.threshold));
    const auto want_precision = eval_precision == "bf16" ? qfae::anomaly::Precision::kBf16
                                                         : qfae::anomaly::Precision::kFp32;
    EXPECT_EQ(qfae::anomaly::prepare_for_scoring(model), want_precision);
    EXPECT_EQ(model.frozen_dtype(), eval_precision == "bf16" ? torch::kBFloat16 : torch::kFloat32);
    const auto index = qfae::data::index_dataset(cfg.data, static_cast<uint64_t>(cfg.train.seed));
    qfae::data::LoaderOptions o;
    o.batch_size = cfg.eval.batch_size;
    qfae::data::Loader loader(index.val, cfg.data, o);
    loader.start_epoch(0);
    qfae::anomaly::AnomalyScorer scorer(model, cfg.eval);
    std::vector<double> normal;
    double map_scale = -std::numeric_limits<double>::infinity();
    qfae::data::Batch batch;
    while (loader.next(batch)) {
      const auto out = scorer(batch.images);
      for (int64_t i = 0; i < out.scores.size(0); ++i) {
        if (batch.labels[i].item<int64_t>() != 0) continue;
        normal.push_back(out.scores[i].item<double>());
        map_scale = std::max(map_scale, out.maps[i].max().item<double>());
      }
    }
    const double want = qfae::percentile(normal, cfg.eval.threshold_percentile);
    EXPECT_NEAR(progress.threshold, want, 1e-6 * std::abs(want));
    EXPECT_NEAR(progress.map_scale, map_scale, 1e-6 * std::abs(map_scale));
  }
}

TEST(Trainer, TooFewImagesForOneBatchIsAClearError) {
  TempDir dir;
  const auto cfg = qfae::test::tiny_config(dir.path() / "data", {"train.batch_size=64"}).config;
  try {
    qfae::train::Trainer trainer(cfg, torch::kCPU);
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.batch_size"), std::string::npos) << e.what();
  }
}

// 16 images in batches of 4 for 1 epoch: 4 steps, a quarter of them warm-up. validate() cannot
// know the step count; before, step 0 trained at a NaN learning rate and the run "diverged".
TEST(Trainer, AWarmUpOfExactlyOneStepNamesTrainWarmup) {
  TempDir dir;
  const auto cfg =
      qfae::test::tiny_config(dir.path() / "data", {"train.warmup=0.25", "train.epochs=1"})
          .config;
  try {
    qfae::train::Trainer trainer(cfg, torch::kCPU);
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("train.warmup: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("0.25 x 4 steps"), std::string::npos) << msg;
  }
}

TEST(TrainCli, SigintSavesAndResumeFinishesTheSameCurve) {
  TempDir dir;
  const auto data = dir.path() / "data";
  const auto loaded = qfae::test::tiny_config(data, {"train.epochs=15", "name=tiny"});
  const auto cfg_path = dir.path() / "tiny.yaml";
  qfae::config::save_yaml(loaded.config, cfg_path.string());

  // Uninterrupted reference run.
  auto r = qfae::test::run_qfae("train -q --config '" + cfg_path.string() + "' -o '" +
                                (dir.path() / "a").string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = train_losses(dir.path() / "a" / "tiny" / "latest" / "metrics.jsonl");

  // The same run, interrupted by SIGINT once a few steps are logged, then resumed.
  const auto out_b = dir.path() / "b";
  const std::string cmd =
      "'" + std::string(QFAE_BINARY) + "' train -q --config '" + cfg_path.string() + "' -o '" +
      out_b.string() + "' 2>/dev/null & pid=$!; " + "for i in $(seq 1 3000); do " +
      "[ \"$(grep -c train " + (out_b / "tiny/latest/metrics.jsonl").string() +
      " 2>/dev/null)\" -ge 3 ] 2>/dev/null && break; sleep 0.01; done; " +
      "kill -INT $pid; wait $pid; echo $? > '" + (dir.path() / "rc").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(qfae::test::read_text(dir.path() / "rc"), "130\n");
  const auto run_b = fs::canonical(out_b / "tiny" / "latest");
  const auto partial = train_losses(run_b / "metrics.jsonl");
  ASSERT_LT(partial.size(), a.size()) << "the signal came after training ended";
  r = qfae::test::run_qfae("train -q --resume '" + run_b.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto b = train_losses(run_b / "metrics.jsonl");
  ASSERT_EQ(b.size(), a.size());
  for (const auto& [step, loss] : a) EXPECT_EQ(b.at(step), loss) << "step " << step;
}

TEST(Trainer, ValidationWithAnomaliesReportsImageAuroc) {
  TempDir dir;
  const auto cfg =
      qfae::test::tiny_config(dir.path() / "data", {"train.val_on_test=true", "train.epochs=2"})
          .config;
  const auto run = dir.path() / "run";
  fs::create_directories(run);
  qfae::train::Trainer trainer(cfg, torch::kCPU);
  ASSERT_EQ(trainer.fit(run.string()), 0);
  std::ifstream in(run / "metrics.jsonl");
  int vals = 0;
  double logged = -1;  // the last validation's, made with the weights fit() ends with
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["event"] != "val") continue;
    ++vals;
    ASSERT_TRUE(j.contains("image_auroc")) << line;
    logged = j["image_auroc"].get<double>();
  }
  EXPECT_EQ(vals, 2);

  // The validation split (the test split here: 4 normal, 4 anomalous images) scored by the
  // trained model, then the AUROC as the Mann-Whitney count: the share of (anomalous, normal)
  // pairs where the anomalous image scores higher, ties counting one half.
  const auto index = qfae::data::index_dataset(cfg.data, static_cast<uint64_t>(cfg.train.seed),
                                               /*val_on_test=*/true);
  qfae::data::LoaderOptions o;
  o.batch_size = cfg.eval.batch_size;
  qfae::data::Loader loader(index.val, cfg.data, o);
  loader.start_epoch(0);
  qfae::anomaly::AnomalyScorer scorer(trainer.model(), cfg.eval);
  std::vector<double> normal, anomalous;
  qfae::data::Batch batch;
  while (loader.next(batch)) {
    const auto out = scorer(batch.images);
    for (int64_t i = 0; i < out.scores.size(0); ++i) {
      (batch.labels[i].item<int64_t>() ? anomalous : normal)
          .push_back(out.scores[i].item<double>());
    }
  }
  ASSERT_EQ(normal.size(), 4u);
  ASSERT_EQ(anomalous.size(), 4u);
  double wins = 0;
  for (const double a : anomalous) {
    for (const double n : normal) wins += a > n ? 1.0 : a == n ? 0.5 : 0.0;
  }
  const double want = wins / 16;
  EXPECT_NEAR(logged, want, 1e-12) << wins << " wins of 16";
  EXPECT_NEAR(trainer.evaluate().image_auroc, want, 1e-12);
}
