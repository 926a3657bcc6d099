// The real binary's bench subcommand on the demo and the tests' tiny config (no data set needed):
// the table, the JSON's keys and step times, FLOPs against a hand count, bad input refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "qfae/util/cpu_features.h"

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
  const auto r = run_qfae("bench --config '" + kDemo + "' --iters 3 --warmup 0 --json '" +
                          json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("images/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2*m*n*k"), std::string::npos) << "the formula is printed";
  ASSERT_TRUE(fs::is_regular_file(json_path));
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  // Keys and types tools rely on; values from the command line and from configs/demo.yaml.
  EXPECT_EQ(j.at("batch_size"), 16);  // the demo's train.batch_size
  EXPECT_EQ(j.at("iters"), 3);
  EXPECT_EQ(j.at("warmup"), 0);
  EXPECT_EQ(j.at("precision"), "fp32");  // the demo's train.precision
  EXPECT_TRUE(j.at("threads").is_number_integer() && j.at("threads").get<int>() >= 1) << j;
  EXPECT_TRUE(j.at("torch_version").is_string()) << j;
  const bool cpu = j.at("device") == "cpu";  // device: auto, the GPU where there is one
  // The peak is the matmul probe of this run: 2 n^3 FLOPs per product, worked out here.
  const auto& probe = j.at("matmul_probe");
  EXPECT_EQ(probe.at("n"), 2048);
  EXPECT_EQ(probe.at("dtype"), "fp32");
  EXPECT_GE(probe.at("reps").get<int>(), 3);
  const double n = 2048;
  EXPECT_NEAR(probe.at("tflops").get<double>(),
              2 * n * n * n * probe.at("reps").get<double>() / probe.at("seconds").get<double>() /
                  1e12,
              1e-9 * probe.at("tflops").get<double>());
  EXPECT_EQ(j.at("peak_source"), "matmul probe");
  EXPECT_EQ(j.at("peak_tflops").get<double>(), probe.at("tflops").get<double>());
  EXPECT_NE(r.out.find("matmul probe: (2048, 2048) @ (2048, 2048) in fp32"), std::string::npos)
      << r.out;
  ASSERT_EQ(j.at("phases").size(), 2u);
  for (const auto& p : j.at("phases")) {
    SCOPED_TRACE(p.at("phase").get<std::string>());
    // --iters 3: three timed steps, whose middle one is the median (worked out here, not read).
    auto all = p.at("step_s").at("all").get<std::vector<double>>();
    ASSERT_EQ(all.size(), 3u);
    std::sort(all.begin(), all.end());
    EXPECT_GT(all.front(), 0.0);
    EXPECT_EQ(p.at("step_s").at("min").get<double>(), all[0]);
    EXPECT_EQ(p.at("step_s").at("median").get<double>(), all[1]);
    EXPECT_EQ(p.at("step_s").at("max").get<double>(), all[2]);
    // Images per second: 16 images a step, a step lasting between the listed extremes.
    const double rate = p.at("images_per_s");
    EXPECT_GE(rate, 16 / all[2] * (1 - 1e-12));
    EXPECT_LE(rate, 16 / all[0] * (1 + 1e-12));
    EXPECT_GT(p.at("flops").at("per_image").get<double>(), 1e6);
    EXPECT_TRUE(p.at("flops").at("parts").is_array() && !p.at("flops").at("parts").empty());
    EXPECT_NEAR(p.at("utilisation").get<double>(),
                p.at("achieved_tflops").get<double>() / j.at("peak_tflops").get<double>(),
                1e-12);
    const auto peak = p.at("memory").at("peak_bytes").get<int64_t>();
    const auto kind = p.at("memory").at("kind").get<std::string>();
    if (cpu) {
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
}

// The FLOPs bench reports for the tests' tiny config (tests/support/tiny_run.h) at batch 2 are
// the ones worked by hand in Flops.TinyConfigWorkedByHand (tests/bench/flops_test.cpp): per
// image 9457280 forward and 5865728 backward, plus the queries' self-attention once per step,
// 114688 forward and twice that backward.
TEST(BenchCli, TinyConfigFlopsAreTheHandCount) {
  TempDir dir;
  const auto json_path = dir.path() / "tiny.json";
  const auto r = run_qfae("bench --batch-size 2 --iters 1 --warmup 0 --json '" +
                          json_path.string() + "'" + qfae::test::tiny_sets(dir.path() / "none"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  ASSERT_EQ(j.at("phases").size(), 2u);
  const auto& eval = j["phases"][0];
  const auto& train = j["phases"][1];
  ASSERT_EQ(eval.at("phase"), "eval");
  const double eval_flops = 2 * 9457280.0 + 114688;  // eval sizes {8, 16}: the same MAE work
  const double train_forward = 2 * 9457280.0 + 114688;
  const double train_backward = 2 * 5865728.0 + 2 * 114688;
  EXPECT_EQ(eval["flops"]["per_step"].get<double>(), eval_flops);
  EXPECT_EQ(eval["flops"]["backward"].get<double>(), 0.0);
  EXPECT_EQ(train["flops"]["forward"].get<double>(), train_forward);
  EXPECT_EQ(train["flops"]["backward"].get<double>(), train_backward);
  EXPECT_EQ(train["flops"]["per_step"].get<double>(), train_forward + train_backward);
  EXPECT_EQ(train["flops"]["per_image"].get<double>(), (train_forward + train_backward) / 2);
  // The achieved TFLOP/s are those counts over the one timed step listed.
  for (const auto* p : {&eval, &train}) {
    const double flops = p == &eval ? eval_flops : train_forward + train_backward;
    const double step = (*p)["step_s"]["all"][0];
    const double achieved = (*p)["achieved_tflops"];
    EXPECT_NEAR(achieved, flops / step / 1e12, 1e-12 * achieved) << (*p)["phase"];
  }
}

// bf16 asked on a CPU without bf16 units (QFAE_CPU_BF16=0 hides them where they exist): the
// steps and the probe run in fp32, and the note says why.
TEST(BenchCli, ModeBatchAndPrecisionOptions) {
  TempDir dir;
  const auto json_path = dir.path() / "eval.json";
  const auto r = run_qfae("bench --config '" + kDemo + "' --mode eval --batch-size 2 --iters 1 " +
                              "--warmup 0 --precision bf16 --peak-tflops 1 --device cpu --json '" +
                              json_path.string() + "'",
                          "", "QFAE_CPU_BF16=0");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  ASSERT_EQ(j.at("phases").size(), 1u);
  EXPECT_EQ(j["phases"][0]["phase"], "eval");
  EXPECT_EQ(j.at("batch_size"), 2);
  EXPECT_EQ(j.at("precision"), "fp32");
  EXPECT_EQ(j.at("frozen_weights"), "fp32");
  EXPECT_NE(r.err.find("--precision: bf16 needs a CPU with AMX or AVX512-BF16 units"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(j.at("peak_tflops"), 1.0);  // --peak-tflops overrides the probe
  EXPECT_EQ(j.at("peak_source"), "--peak-tflops");
  EXPECT_EQ(j["matmul_probe"]["dtype"], "fp32") << "probed at the precision the steps ran in";
  EXPECT_NEAR(j["phases"][0]["utilisation"].get<double>(),
              j["phases"][0]["achieved_tflops"].get<double>() / 1.0, 1e-15);
}

// On a CPU with bf16 units: the steps run under bf16 autocast with bf16 frozen networks, and the
// probe that sets the peak multiplies bf16 matrices.
TEST(BenchCli, Bf16OnACpuWithBf16Units) {
  if (!qfae::cpu_bf16_support().supported) GTEST_SKIP() << "this CPU has no bf16 units";
  TempDir dir;
  const auto json_path = dir.path() / "bench.json";
  const auto r =
      run_qfae("bench --config '" + kDemo + "' --mode both --batch-size 2 --iters 1 " +
               "--warmup 0 --precision bf16 --device cpu --json '" + json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  EXPECT_EQ(j.at("precision"), "bf16");
  EXPECT_EQ(j.at("frozen_weights"), "bf16");
  EXPECT_EQ(j["matmul_probe"]["dtype"], "bf16");
  ASSERT_EQ(j.at("phases").size(), 2u);
  for (const auto& phase : j["phases"]) {
    EXPECT_GT(phase["achieved_tflops"].get<double>(), 0.0) << phase["phase"];
  }
}

// --profile: one more step of each phase under LibTorch's profiler, its trace and op table written,
// the largest ops printed and listed in --json.
TEST(BenchCli, ProfileWritesTracesAndOpTables) {
  TempDir dir;
  const auto profile = dir.path() / "profile";
  const auto json_path = dir.path() / "bench.json";
  const auto r = run_qfae("bench --config '" + kDemo + "' --mode both --batch-size 2 --iters 1 " +
                          "--warmup 0 --device cpu --profile '" + profile.string() +
                          "' --json '" + json_path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const std::string phase : {"train", "eval"}) {
    SCOPED_TRACE(phase);
    const auto trace = nlohmann::json::parse(qfae::test::read_text(profile / (phase + ".trace.json")));
    EXPECT_TRUE(trace.is_array() && !trace.empty());
    const auto table = qfae::test::read_text(profile / (phase + ".ops.csv"));
    EXPECT_EQ(table.rfind("op,calls,self_ms,total_ms,self_share\n", 0), 0u) << table;
    EXPECT_NE(r.out.find("profiled " + phase + " step"), std::string::npos) << r.out;
  }
  const auto j = nlohmann::json::parse(qfae::test::read_text(json_path));
  for (const auto& phase : j["phases"]) {
    const auto& ops = phase["profile"]["ops"];
    ASSERT_FALSE(ops.empty()) << phase["phase"];
    double last = ops[0]["self_ms"].get<double>();
    for (const auto& op : ops) {
      EXPECT_LE(op["self_ms"].get<double>(), last) << "largest self time first";
      last = op["self_ms"].get<double>();
    }
  }
  const auto bad = run_qfae("bench --config '" + kDemo + "' --profile /proc/qfae-no");
  EXPECT_EQ(bad.code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--profile"), std::string::npos) << bad.err;
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
  double waits = 0;
  for (const double w : j.at("batch_seconds")) waits += w;
  EXPECT_EQ(j.at("batch_seconds").size(), 5u);
  EXPECT_NEAR(waits, seconds, 1e-6);
  // The 20 images worked out above over the five waits listed, summed here.
  EXPECT_NEAR(rate, 20.0 / waits, 1e-9 * rate);

  const auto missing = run_qfae("bench --config '" + kDemo +
                                "' --mode loader --set data.root=/nowhere/data");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nowhere/data"), std::string::npos) << missing.err;
}
