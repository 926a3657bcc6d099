// The real qfae binary: help, version, config printing and overrides, exit codes on bad input.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "../support/run_binary.h"
#include "qfae/util/cpu_features.h"

using qfae::test::run_qfae;

namespace {
const std::string kConfigs = QFAE_CONFIG_DIR;
size_t count_lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }
}  // namespace

TEST(Cli, HelpListsSubcommandsAndDefaults) {
  auto r = run_qfae("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* sub : {"train", "eval", "infer", "config", "report", "version"}) {
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
  }
  r = run_qfae("eval --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--set"), std::string::npos);
  EXPECT_NE(r.out.find("=test"), std::string::npos) << r.out;  // a default is shown
}

TEST(Cli, VersionNamesTheLibraries) {
  const auto r = run_qfae("version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("LibTorch"), std::string::npos);
  EXPECT_NE(r.out.find("OpenCV"), std::string::npos);
  EXPECT_NE(r.out.find("CUDA available"), std::string::npos);
  // The CPU line follows the detection, and QFAE_CPU_BF16=0 hides the units.
  const auto& cpu = qfae::cpu_bf16_support();
  EXPECT_NE(r.out.find("bf16 units: " + (cpu.supported ? cpu.units : std::string("none"))),
            std::string::npos)
      << r.out;
  const auto hidden = run_qfae("version", "", "QFAE_CPU_BF16=0");
  EXPECT_NE(hidden.out.find("bf16 units: none (precision bf16 runs in fp32)"), std::string::npos)
      << hidden.out;
}

TEST(Cli, ConfigPrintsResolvedYamlWithOverrides) {
  const auto r =
      run_qfae("config --config " + kConfigs + "/brats.yaml --set train.lr=1e-4 --seed 7");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto doc = YAML::Load(r.out);
  EXPECT_DOUBLE_EQ(doc["train"]["lr"].as<double>(), 1e-4);
  EXPECT_EQ(doc["train"]["seed"].as<int>(), 7);
  EXPECT_EQ(doc["name"].as<std::string>(), "brats");
  EXPECT_EQ(doc["backbone"]["taps"].as<std::vector<int>>(), (std::vector<int>{-2, -4}));
}

TEST(Cli, BadOverridesFailWithOneLineAndCode2) {
  auto r = run_qfae("config --config " + kConfigs + "/brats.yaml --set train.lrr=1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("train.lrr"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("train.lr,"), std::string::npos) << r.err;  // nearby valid keys
  EXPECT_TRUE(r.out.empty());

  r = run_qfae("config --config " + kConfigs + "/brats.yaml --set train.lr=abc");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("is not a number"), std::string::npos) << r.err;

  r = run_qfae("config --device tpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("device"), std::string::npos) << r.err;
}

TEST(Cli, MissingFilesAndUnknownCommandsFail) {
  auto r = run_qfae("train --config /nonexistent/x.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/x.yaml"), std::string::npos) << r.err;
  r = run_qfae("frobnicate");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("infer");  // --checkpoint and inputs are required
  EXPECT_EQ(r.code, 2);
}
