// The published code's training run, step by step: qfae trains from the same initial weights on the
// same batches and must follow the reference's per-step loss, learning rate and beta1, and end at
// its final weights. The fixture (tests/fixtures/trajectory/README.md) is QFAE_TRAJECTORY_FIXTURE
// when set; its two frozen backbones are rebuilt from the recipe in its metadata by
// tests/scripts/test_trajectory.sh, which passes their folder as QFAE_TRAJECTORY_BACKBONES.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "qfae/config/loader.h"
#include "qfae/io/safetensors.h"
#include "qfae/io/state_dict.h"
#include "qfae/pipeline/anomaly_model.h"
#include "qfae/train/train_step.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;

namespace {

// The bounds: float32 rounding, not behaviour. The reference run with 1 thread instead of
// 2 differs from itself by 2.3e-7 per step and 3.1e-5 in the key biases.
constexpr double kLossRelTolerance = 1e-5;    // per step, relative
constexpr double kWeightTolerance = 1e-5;     // final weights, absolute
constexpr double kKeyBiasTolerance = 1e-4;    // attention key biases: exact gradient zero, so
                                              // Adam turns rounding noise into full-size steps

std::string fixture_path() {
  if (const char* env = std::getenv("QFAE_TRAJECTORY_FIXTURE"); env && *env) return env;
  return std::string(QFAE_TEST_FIXTURES) + "/trajectory/public.safetensors";
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

const torch::Tensor& tensor(const qfae::io::SafetensorsFile& f, const std::string& name) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw std::runtime_error("trajectory fixture lacks tensor " + name);
  return it->second;
}

// Rows of a bias that feed attention keys: softmax(q·k + q·b) = softmax(q·k) for a bias b shared by
// every key, so its exact gradient is zero. "attn.qkv.bias" (3D: q|k|v, the decoder's ViT blocks)
// and "attn.Wqkv.bias" (D + 2 hd: q|k|v with one shared key/value head, the Q-Former).
std::pair<int64_t, int64_t> key_bias_rows(const std::string& name, int64_t rows, int64_t dim) {
  const auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with("attn.qkv.bias")) return {rows / 3, 2 * rows / 3};
  if (ends_with("attn.Wqkv.bias")) return {dim, dim + (rows - dim) / 2};
  return {0, 0};
}

TEST(Trajectory, FollowsTheReferenceRun) {
  const char* backbones = std::getenv("QFAE_TRAJECTORY_BACKBONES");
  if (!backbones || !*backbones) {
    GTEST_SKIP() << "QFAE_TRAJECTORY_BACKBONES is not set: run `ctest -R Trajectory`, which "
                    "rebuilds the fixture's backbones (tests/scripts/test_trajectory.sh)";
  }
  const auto fixture = qfae::io::load_safetensors(fixture_path());
  const auto meta = nlohmann::json::parse(fixture.metadata.at("trajectory_fixture"));

  // The qfae config the fixture was made for, its scratch paths pointed at the rebuilt backbones.
  const auto scratch = fs::temp_directory_path() / ("qfae-trajectory-" + std::to_string(::getpid()));
  fs::create_directories(scratch / "data");
  std::string yaml = meta.at("qfae_config_yaml").get<std::string>();
  yaml = replace_all(yaml, "<scratch>/backbones", backbones);
  yaml = replace_all(yaml, "<scratch>", scratch.string());
  const auto config_path = scratch / "config.yaml";
  std::ofstream(config_path) << yaml;
  const auto config = qfae::config::load_config({config_path.string()}, {}).config;
  fs::remove_all(scratch);
  qfae::init_threads(static_cast<int>(config.threads));  // as `qfae train` does (0: every core)

  qfae::pipeline::AnomalyModel model(config, torch::kCPU);
  auto& autoencoder = *model.autoencoder();
  qfae::io::load_module_state(autoencoder, fixture.tensors, "init.", /*strict=*/true,
                              fixture_path());
  autoencoder.train();

  const auto images = tensor(fixture, "input.images");             // (N, 3, S, S)
  const auto order = tensor(fixture, "input.order");               // (steps, N)
  const auto ref_loss = tensor(fixture, "ref.loss").to(torch::kFloat64);
  const auto ref_lr = tensor(fixture, "ref.lr").to(torch::kFloat64);
  const auto ref_beta1 = tensor(fixture, "ref.beta1").to(torch::kFloat64);
  const int64_t steps = order.size(0);
  ASSERT_EQ(ref_loss.size(0), steps);
  ASSERT_EQ(config.train.batch_size, order.size(1)) << "the fixture's steps are full batches";

  // One optimizer step per epoch of the whole batch: the schedule spans `steps` steps.
  qfae::train::TrainStep step(model, steps, qfae::pipeline::Precision::kFp32);
  double worst_loss = 0.0;
  int64_t worst_step = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const auto v = step.schedule().at(s);
    EXPECT_DOUBLE_EQ(v.lr, ref_lr[s].item<double>()) << "learning rate of step " << s;
    EXPECT_DOUBLE_EQ(v.beta1, ref_beta1[s].item<double>()) << "beta1 of step " << s;
    const auto batch = images.index_select(0, order[s]);
    const double loss = step(batch, s).item<double>();
    const double want = ref_loss[s].item<double>();
    const double gap = std::abs(loss - want) / std::abs(want);
    EXPECT_LE(gap, kLossRelTolerance) << "step " << s << ": loss " << loss << ", reference " << want;
    if (gap > worst_loss) worst_loss = gap, worst_step = s;
  }

  const int64_t dim = config.model.dim;
  double worst_weight = 0.0, worst_key_bias = 0.0;
  std::string worst_name;
  const auto ours = qfae::io::module_state(autoencoder);
  int64_t compared = 0;
  for (const auto& [name, mine] : ours) {
    const auto& want = tensor(fixture, "final." + name);
    ASSERT_EQ(mine.sizes(), want.sizes()) << name;
    auto diff = (mine.to(torch::kFloat64) - want.to(torch::kFloat64)).abs().reshape({-1});
    const auto [k0, k1] = key_bias_rows(name, diff.size(0), dim);
    if (k1 > k0) {
      const double key = diff.slice(0, k0, k1).max().item<double>();
      EXPECT_LE(key, kKeyBiasTolerance) << name << " rows " << k0 << ".." << k1 << " (key bias)";
      worst_key_bias = std::max(worst_key_bias, key);
      diff.slice(0, k0, k1).zero_();
    }
    const double d = diff.max().item<double>();
    EXPECT_LE(d, kWeightTolerance) << name;
    if (d > worst_weight) worst_weight = d, worst_name = name;
    ++compared;
  }
  size_t finals = 0;
  for (const auto& [name, t] : fixture.tensors) finals += name.rfind("final.", 0) == 0;
  EXPECT_EQ(static_cast<size_t>(compared), finals) << "every final.* tensor is one of the model's";
  std::printf("trajectory %s: %ld steps, worst loss gap %.3g (step %ld); final weights: %ld "
              "tensors, worst %.3g (%s), key biases %.3g\n",
              meta.value("variant", std::string("?")).c_str(), static_cast<long>(steps),
              worst_loss, static_cast<long>(worst_step), static_cast<long>(compared),
              worst_weight, worst_name.c_str(), worst_key_bias);
}

}  // namespace
