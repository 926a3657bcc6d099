// Precision settings (train.precision, eval.precision, backbone.frozen_bf16): names and their
// fallback off CUDA, and the frozen networks held in bf16 against float32 on a tiny AnomalyModel.
// QFAE_TEST_DEVICE=cuda runs the AnomalyModel tests on the GPU, where eval.precision bf16 also
// applies.
#include "qfae/anomaly/precision.h"

#include <gtest/gtest.h>
#include <torch/version.h>

#include "../support/run_binary.h"
#include "../support/test_device.h"
#include "../support/tiny_run.h"
#include "../support/user_error.h"
#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"

using qfae::test::TempDir;

namespace qfae::anomaly {
namespace {

TEST(Precision, TheCpuRunsFp32WhateverIsAsked) {
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA, 0);
  EXPECT_EQ(resolve_precision("fp32", cpu, "k"), Precision::kFp32);
  EXPECT_EQ(resolve_precision("tf32", cpu, "k"), Precision::kFp32);
  EXPECT_EQ(resolve_precision("bf16", cpu, "k"), Precision::kFp32);
  EXPECT_EQ(resolve_precision("tf32", cuda, "k"), Precision::kTf32);
  EXPECT_EQ(resolve_precision("bf16", cuda, "k"), Precision::kBf16);
  EXPECT_TRUE(precision_falls_back("bf16", cpu));
  EXPECT_FALSE(precision_falls_back("fp32", cpu));
  EXPECT_FALSE(precision_falls_back("bf16", cuda));
  EXPECT_STREQ(precision_name(Precision::kBf16), "bf16");
  const auto why = test::user_error([&] { resolve_precision("fp16", cuda, "eval.precision"); });
  EXPECT_NE(why.find("eval.precision"), std::string::npos) << why;
  EXPECT_NE(why.find("fp16"), std::string::npos) << why;
}

TEST(Precision, ConfigKeysAreValidated) {
  TempDir dir;
  const auto root = dir.path() / "data";
  test::tiny_config(root);  // writes the data
  for (const auto& key : {"eval.precision", "train.precision"}) {
    const auto loaded = test::tiny_config(root, {std::string(key) + "=half"});
    const auto why = test::user_error([&] { config::validate(loaded.config, loaded.sources); });
    EXPECT_NE(why.find(key), std::string::npos) << why;
    EXPECT_NE(why.find("half"), std::string::npos) << why;
  }
  const auto cfg = test::tiny_config(root, {"eval.precision=bf16", "train.precision=tf32"}).config;
  EXPECT_NO_THROW(config::validate(cfg));
  EXPECT_EQ(cfg.eval.precision, "bf16");
  EXPECT_EQ(cfg.train.precision, "tf32");
}

// One batch of the tiny data set's test split.
torch::Tensor test_batch(const config::Config& cfg) {
  const auto index = data::index_dataset(cfg.data, 0);
  data::LoaderOptions o;
  o.batch_size = static_cast<int64_t>(index.test.size());
  data::Loader loader(index.test, cfg.data, o);
  loader.start_epoch(0);
  data::Batch batch;
  EXPECT_TRUE(loader.next(batch));
  return batch.images;
}

double max_relative(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

TEST(Precision, FrozenNetworksInBf16ScoreNearFloat32AndStillTrain) {
  TempDir dir;
  const auto device = test::test_device();
  const auto cfg = test::tiny_config(dir.path() / "data").config;
  AnomalyModel model(cfg, device);
  EXPECT_EQ(model.frozen_dtype(), torch::kFloat32);
  EXPECT_EQ(model.frozen_dtype_for(Precision::kBf16), torch::kBFloat16);
  EXPECT_EQ(model.frozen_dtype_for(Precision::kTf32), torch::kFloat32);
  const auto images = test_batch(cfg);

  AnomalyScorer scorer(model, cfg.eval);
  const auto fp32 = scorer(images);
  model.set_frozen_dtype(torch::kBFloat16);
  EXPECT_EQ(model.frozen_dtype(), torch::kBFloat16);
  const auto bf16 = scorer(images);
  EXPECT_EQ(bf16.maps.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_relative(bf16.scores, fp32.scores), 2e-2);
  EXPECT_LT(max_relative(bf16.maps, fp32.maps), 5e-2);
  EXPECT_FALSE(torch::equal(bf16.scores, fp32.scores)) << "bf16 weights should round something";

  // Under bf16 autocast the decoder hands x_hat over in bf16. The frozen MAE casts its input to
  // its weights' dtype anyway, so with bf16 frozen networks a bf16 x_hat changes nothing.
  {
    torch::NoGradGuard no_grad;
    const auto x = images.to(device);
    const auto x_hat = model.reconstruct(x);
    const auto full = scorer.from_reconstruction(x, x_hat);
    const auto rounded = scorer.from_reconstruction(x, x_hat.to(torch::kBFloat16));
    EXPECT_TRUE(torch::equal(full.maps, rounded.maps));
    EXPECT_TRUE(torch::equal(full.scores, rounded.scores));
  }

  // Back to float32 (validation and eval after bf16 training): the float32 scores exactly.
  {
    FrozenDtypeScope scope(model, torch::kFloat32);
    EXPECT_TRUE(torch::equal(scorer(images).scores, fp32.scores));
  }
  EXPECT_EQ(model.frozen_dtype(), torch::kBFloat16);

  // The training loss still reaches the autoencoder through the bf16 perceptual MAE.
  auto& ae = model.autoencoder();
  ae->train();
  const auto x = images.to(device);
  const auto loss = model.training_loss(x, model.reconstruct(x));
  EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
  loss.backward();
  double grad = 0;
  for (const auto& p : ae->parameters()) {
    if (p.grad().defined()) grad += p.grad().abs().sum().item<double>();
  }
  EXPECT_GT(grad, 0.0);
  for (const auto& p : model.perceptual_backbone().parameters()) {
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(Precision, FrozenBf16CanBeSwitchedOff) {
  TempDir dir;
  const auto cfg = test::tiny_config(dir.path() / "data", {"backbone.frozen_bf16=false"}).config;
  AnomalyModel model(cfg, torch::kCPU);
  EXPECT_EQ(model.frozen_dtype_for(Precision::kBf16), torch::kFloat32);
}

// eval.precision bf16 on the CPU: scored in fp32 with float32 frozen weights, and said so.
TEST(Precision, ScoringOnTheCpuFallsBackToFp32) {
  TempDir dir;
  const auto cfg = test::tiny_config(dir.path() / "data", {"eval.precision=bf16"}).config;
  AnomalyModel model(cfg, torch::kCPU);
  EXPECT_EQ(prepare_for_scoring(model), Precision::kFp32);
  EXPECT_EQ(model.frozen_dtype(), torch::kFloat32);
  EXPECT_EQ(AnomalyScorer(model, cfg.eval).precision(), Precision::kFp32);
}

// Collects LibTorch's warnings (TORCH_WARN) while it lives (the handler API changed after 1.13).
struct WarningCollector : c10::WarningHandler {
  std::vector<std::string> messages;
#if TORCH_VERSION_MAJOR >= 2
  using Guard = c10::WarningUtils::WarningHandlerGuard;
  void process(const c10::Warning& warning) override { messages.push_back(warning.msg()); }
#else
  using Guard = c10::Warning::WarningHandlerGuard;
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
#endif
};

// The scope's TF32 switch and restore are process-wide flags, settable without a GPU: on LibTorch
// >= 2.10 through the fp32_precision API, whose legacy allow_tf32 setters warn (deprecated) and
// must not be mixed with it. Checked here on any machine, with a CUDA device named.
TEST(Precision, Tf32ScopeSetsAndRestoresTheFlagsWithoutWarnings) {
  const torch::Device cuda(torch::kCUDA, 0);
  WarningCollector warnings;
  WarningCollector::Guard guard(&warnings);
  compat::set_cuda_tf32(false);
  {
    PrecisionScope tf32(Precision::kTf32, cuda);
    EXPECT_TRUE(compat::cuda_matmul_tf32());
    {
      PrecisionScope fp32(Precision::kFp32, cuda);
      EXPECT_FALSE(compat::cuda_matmul_tf32());
    }
    EXPECT_TRUE(compat::cuda_matmul_tf32());
  }
  EXPECT_FALSE(compat::cuda_matmul_tf32());
  {
    PrecisionScope tf32(Precision::kTf32, cuda);
    EXPECT_TRUE(compat::cuda_matmul_tf32());
  }
  EXPECT_FALSE(compat::cuda_matmul_tf32());
#ifdef QFAE_FP32_PRECISION_API
  EXPECT_EQ(at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV),
            at::Float32Precision::IEEE);
#endif
  EXPECT_TRUE(warnings.messages.empty()) << warnings.messages.front();
}

// On CUDA (QFAE_TEST_DEVICE=cuda): eval.precision bf16 holds the frozen networks in bf16 and
// scores near fp32; the scope restores TF32 and autocast.
TEST(Precision, Bf16ScoringOnCudaIsNearFp32) {
  const auto device = test::test_device();
  if (!device.is_cuda()) GTEST_SKIP() << "QFAE_TEST_DEVICE is not a CUDA device";
  TempDir dir;
  const auto root = dir.path() / "data";
  const auto fp32_cfg = test::tiny_config(root).config;
  auto bf16_cfg = test::tiny_config(root, {"eval.precision=bf16"}).config;
  AnomalyModel model(fp32_cfg, device);
  const auto images = test_batch(fp32_cfg);
  const auto fp32 = AnomalyScorer(model, fp32_cfg.eval)(images);
  AnomalyModel bf16_system(bf16_cfg, device);
  EXPECT_EQ(prepare_for_scoring(bf16_system), Precision::kBf16);
  EXPECT_EQ(bf16_system.frozen_dtype(), torch::kBFloat16);
  const auto bf16 = AnomalyScorer(bf16_system, bf16_cfg.eval)(images);
  EXPECT_LT(max_relative(bf16.scores, fp32.scores), 5e-2);
  {
    PrecisionScope outer(Precision::kBf16, device);
    {
      PrecisionScope inner(Precision::kTf32, device);
      EXPECT_TRUE(compat::cuda_matmul_tf32());
    }
    const auto a = torch::randn({8, 8}, torch::TensorOptions().device(device));
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);  // outer autocast still on
    EXPECT_FALSE(compat::cuda_matmul_tf32());
  }
  const auto a = torch::randn({8, 8}, torch::TensorOptions().device(device));
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace qfae::anomaly
