// The real binary's bench subcommand on the demo config (tiny backbones, no data set needed):
// the table, a JSON file with sane numbers, and bad input refused with exit code 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../support/run_binary.h"
#include "qfae/config/loader.h"
#include "qfae/engine/flops.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::TempDir;

namespace {
const std::string kDemo = std::string(QFAE_CONFIG_DIR) + "/demo.yaml";
}

TEST(BenchCli, DemoConfigWritesSaneJson) {
  TempDir dir;
  const auto json_path = dir.path() / "out.json";
  // The brief's command; the demo's data.root need not exist, bench reads no data.
  const auto r = run_qfae("bench --config '" + kDemo + "' --iters 2 --warmup 1 --json '" +
                          json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("images/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2*m*n*k"), std::string::npos) << "the formula is printed";
  ASSERT_TRUE(fs::is_regular_file(json_path));
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  EXPECT_EQ(j.at("batch_size"), 16);  // the demo's train.batch_size
  EXPECT_EQ(j.at("iters"), 2);
  ASSERT_EQ(j.at("phases").size(), 2u);
  for (const auto& p : j.at("phases")) {
    SCOPED_TRACE(p.at("phase").get<std::string>());
    const auto& s = p.at("step_s");
    EXPECT_EQ(s.at("all").size(), 2u);
    EXPECT_GT(s.at("min").get<double>(), 0.0);
    EXPECT_LE(s.at("min").get<double>(), s.at("median").get<double>());
    EXPECT_LE(s.at("median").get<double>(), s.at("max").get<double>());
    EXPECT_NEAR(p.at("images_per_s").get<double>(), 16 / s.at("median").get<double>(), 1e-6);
    const auto& f = p.at("flops");
    EXPECT_GT(f.at("per_image").get<double>(), 1e6);
    EXPECT_NEAR(f.at("per_step").get<double>(), 16 * f.at("per_image").get<double>(), 1.0);
    const auto peak = p.at("memory").at("peak_bytes").get<int64_t>();
    const auto kind = p.at("memory").at("kind").get<std::string>();
    if (j.at("device") == "cpu") {
      EXPECT_GT(peak, 10 << 20) << kind;  // the process holds LibTorch: well over 10 MiB
    } else {
      EXPECT_TRUE(peak > 0 || kind.find("not available") != std::string::npos) << kind;
    }
  }
  // Eval ran first (its peak memory excludes the optimizer), then train with its backward.
  EXPECT_EQ(j["phases"][0]["phase"], "eval");
  EXPECT_EQ(j["phases"][1]["phase"], "train");
  EXPECT_EQ(j["phases"][0]["flops"]["backward"], 0.0);
  EXPECT_GT(j["phases"][1]["flops"]["backward"].get<double>(), 0.0);

  // The FLOPs are the counter's for the demo config (tiny_dino64 / tiny_mae64 descriptions).
  const auto cfg = qfae::config::load_config({kDemo}, {}).config;
  const auto shapes = qfae::engine::model_shapes(
      cfg, {qfae::backbone::read_description(cfg.backbone.encoders[0])},
      qfae::backbone::read_description(cfg.backbone.perceptual));
  EXPECT_DOUBLE_EQ(j["phases"][1]["flops"]["per_step"].get<double>(),
                   qfae::engine::train_step_flops(shapes, 16).total());
}

TEST(BenchCli, ModeBatchAndPrecisionOptions) {
  TempDir dir;
  const auto json_path = dir.path() / "eval.json";
  const auto r = run_qfae("bench --config '" + kDemo + "' --mode eval --batch-size 2 --iters 1 " +
                          "--warmup 0 --precision bf16 --peak-tflops 1 --device cpu --json '" +
                          json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  ASSERT_EQ(j.at("phases").size(), 1u);
  EXPECT_EQ(j["phases"][0]["phase"], "eval");
  EXPECT_EQ(j.at("batch_size"), 2);
  EXPECT_EQ(j.at("precision"), "fp32");  // bf16 is CUDA only: the CPU says so and times fp32
  EXPECT_EQ(j.at("frozen_weights"), "fp32");
  EXPECT_NE(r.err.find("CUDA only"), std::string::npos) << r.err;
  EXPECT_GT(j["phases"][0]["utilisation"].get<double>(), 0.0);  // from --peak-tflops
}

TEST(BenchCli, RefusesBadInput) {
  auto r = run_qfae("bench --config '" + kDemo + "' --precision fp8");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("bench --config '" + kDemo + "' --iters 0");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("bench --config '" + kDemo + "' --set backbone.perceptual=/nowhere/mae.pt");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("backbone.perceptual"), std::string::npos) << r.err;
}

// --mode loader: counts add up (batches x batch size), the rate is images / seconds, the timed
// batches' waits sum to the wall time, and a missing data.root is a one-line error naming it.
TEST(BenchCli, LoaderModeTimesTheTrainingLoader) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ASSERT_EQ(run_qfae("prepare --synthetic '" + data.string() + "' --image-size 32 --train 10 " +
                     "--val 2 --test-normal 2 --test-anomalous 2")
                .code,
            0);
  const auto json_path = dir.path() / "loader.json";
  const auto r = run_qfae("bench --config '" + kDemo + "' --mode loader --set 'data.root=" +
                          data.string() + "' --batch-size 4 --warmup 1 --iters 5 --workers 2 " +
                          "--json '" + json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("images/s"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  EXPECT_EQ(j.at("phase"), "loader");
  EXPECT_EQ(j.at("workers"), 2);
  EXPECT_EQ(j.at("train_images"), 10);
  EXPECT_EQ(j.at("batches"), 5);
  EXPECT_EQ(j.at("images"), 20);  // 2 full batches per epoch of 10: epochs restart, 4 each
  EXPECT_EQ(j.at("augment"), true);
  EXPECT_EQ(j.at("pinned"), false);  // page-locked batches only where the device is CUDA
  const double seconds = j.at("seconds"), rate = j.at("images_per_s");
  EXPECT_GT(seconds, 0.0);
  EXPECT_NEAR(rate, 20.0 / seconds, 1e-9 * rate);
  double waits = 0;
  for (const double w : j.at("batch_seconds")) waits += w;
  EXPECT_EQ(j.at("batch_seconds").size(), 5u);
  EXPECT_NEAR(waits, seconds, 1e-6);

  const auto missing = run_qfae("bench --config '" + kDemo +
                                "' --mode loader --set data.root=/nowhere/data");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nowhere/data"), std::string::npos) << missing.err;
}
