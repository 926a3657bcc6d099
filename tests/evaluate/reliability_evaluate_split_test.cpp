// evaluate_split and infer_images leave their output folder whole or as it was: a stop signal
// (StopRequested after the current batch) or an error writes nothing, an earlier result stays.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "qfae/data/dataset.h"
#include "qfae/evaluate/evaluate_split.h"
#include "qfae/evaluate/inference.h"
#include "qfae/run/stop_signal.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;
using qfae::test::read_text;
using qfae::test::TempDir;

namespace reliability_evaluate_split_test {

// Clears the stop flag however the test ends, so later tests in this process are not stopped.
struct ClearStopSignal {
  ~ClearStopSignal() { qfae::run::set_stop_signal(0); }
};

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    out.push_back(e.path().lexically_relative(dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ReliabilityEvaluator, AStopSignalWritesNothingAndKeepsTheEarlierResult) {
  TempDir dir;
  const auto cfg = qfae::test::tiny_config(dir.path() / "data", {"eval.bootstrap=0"}).config;
  qfae::anomaly::AnomalyModel model(cfg, torch::kCPU);
  const auto samples = qfae::data::index_dataset(cfg.data, 0).test;
  qfae::evaluate::EvaluationOptions o;
  o.progress = false;
  o.out_dir = (dir.path() / "out").string();
  qfae::evaluate::evaluate_split(model, samples, o);
  const auto before = entries_of(dir.path() / "out");
  const auto metrics = read_text(dir.path() / "out" / "metrics.json");
  ASSERT_FALSE(metrics.empty());

  ClearStopSignal clear;
  qfae::run::set_stop_signal(SIGTERM);
  try {
    qfae::evaluate::evaluate_split(model, samples, o);
    FAIL() << "expected StopRequested";
  } catch (const qfae::run::StopRequested& e) {
    EXPECT_EQ(e.signal_number(), SIGTERM);
  }
  EXPECT_EQ(entries_of(dir.path() / "out"), before);
  EXPECT_EQ(read_text(dir.path() / "out" / "metrics.json"), metrics);
  o.out_dir = (dir.path() / "fresh").string();
  EXPECT_THROW(qfae::evaluate::evaluate_split(model, samples, o), qfae::run::StopRequested);
  EXPECT_FALSE(fs::exists(dir.path() / "fresh"));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find(".partial-"), std::string::npos) << e.path();
  }
}

TEST(ReliabilityEvaluator, AnErrorHalfwayLeavesNoFolder) {
  TempDir dir;
  const auto cfg = qfae::test::tiny_config(dir.path() / "data").config;
  qfae::anomaly::AnomalyModel model(cfg, torch::kCPU);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.autoencoder()->parameters()) p.fill_(std::nan(""));
  }
  qfae::evaluate::EvaluationOptions o;
  o.progress = false;
  o.out_dir = (dir.path() / "out").string();
  EXPECT_THROW(
      qfae::evaluate::evaluate_split(model, qfae::data::index_dataset(cfg.data, 0).test, o),
      qfae::UserError);
  std::vector<std::string> top;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    top.push_back(e.path().filename().string());
  }
  EXPECT_EQ(top, std::vector<std::string>{"data"}) << "no out/, no out.partial-<pid>/";
}

TEST(ReliabilityInference, AStopSignalWritesNothing) {
  TempDir dir;
  const auto cfg = qfae::test::tiny_config(dir.path() / "data").config;
  qfae::anomaly::AnomalyModel model(cfg, torch::kCPU);
  std::vector<std::string> files;
  for (const auto& s : qfae::data::index_dataset(cfg.data, 0).test) files.push_back(s.image);
  qfae::evaluate::InferenceOptions io;
  io.progress = false;
  io.out_dir = (dir.path() / "out").string();
  ClearStopSignal clear;
  qfae::run::set_stop_signal(SIGINT);
  EXPECT_THROW(qfae::evaluate::infer_images(model, files, io), qfae::run::StopRequested);
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
  qfae::run::set_stop_signal(0);
  const auto r = qfae::evaluate::infer_images(model, files, io);
  EXPECT_EQ(r.processed, static_cast<int64_t>(files.size()));
  EXPECT_TRUE(fs::is_regular_file(dir.path() / "out" / "scores.csv"));
}

}  // namespace reliability_evaluate_split_test
