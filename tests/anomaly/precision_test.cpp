// Precision settings (train.precision, eval.precision, backbone.frozen_bf16): names and their
// fallback where the device lacks them, and the frozen networks held in bf16 against float32 on a
// tiny AnomalyModel. QFAE_TEST_DEVICE=cuda runs the AnomalyModel tests on the GPU. bf16 runs there
// and on CPUs with AMX or AVX512-BF16.
#include "qfae/anomaly/precision.h"

#include <gtest/gtest.h>
#include <torch/version.h>

#include <iostream>

#include "../support/run_binary.h"
#include "../support/test_device.h"
#include "../support/tiny_run.h"
#include "../support/user_error.h"
#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/util/cpu_features.h"

using qfae::test::TempDir;

namespace qfae::anomaly {
namespace {

// tf32 is a CUDA feature; bf16 runs on CUDA and on CPUs with bf16 units.
TEST(Precision, TheCpuRunsBf16WhereItHasTheUnitsAndFp32Otherwise) {
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA, 0);
  const bool units = cpu_bf16_support().supported;
  EXPECT_EQ(resolve_precision("fp32", cpu, "k"), Precision::kFp32);
  EXPECT_EQ(resolve_precision("tf32", cpu, "k"), Precision::kFp32);
  EXPECT_EQ(resolve_precision("bf16", cpu, "k"), units ? Precision::kBf16 : Precision::kFp32);
  EXPECT_EQ(resolve_precision("tf32", cuda, "k"), Precision::kTf32);
  EXPECT_EQ(resolve_precision("bf16", cuda, "k"), Precision::kBf16);
  EXPECT_TRUE(precision_falls_back("tf32", cpu));
  EXPECT_EQ(precision_falls_back("bf16", cpu), !units);
  EXPECT_FALSE(precision_falls_back("fp32", cpu));
  EXPECT_FALSE(precision_falls_back("bf16", cuda));
  EXPECT_EQ(fallback_note("tf32", cpu, "train.precision"),
            "train.precision: tf32 applies on CUDA only; computing in fp32 on cpu");
  EXPECT_EQ(fallback_note("bf16", cuda, "eval.precision"), "");
  if (!units) {
    const auto note = fallback_note("bf16", cpu, "eval.precision");
    EXPECT_EQ(note.rfind("eval.precision: bf16 needs a CPU with AMX or AVX512-BF16", 0), 0u)
        << note;
  }
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

// eval.precision bf16 on a CPU without bf16 units: scored in fp32 with float32 frozen weights.
// (The note, said once per run: EvalCli.Bf16OnACpuWithoutUnitsSaysSoOnce, with QFAE_CPU_BF16=0.)
TEST(Precision, ScoringOnACpuWithoutBf16UnitsFallsBackToFp32) {
  if (cpu_bf16_support().supported) GTEST_SKIP() << "this CPU has " << cpu_bf16_support().units;
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

// On a device with bf16 units (CUDA with QFAE_TEST_DEVICE=cuda; a CPU with AMX or AVX512-BF16):
// eval.precision bf16 holds the frozen networks in bf16, runs the autoencoder under autocast and
// gives finite maps and scores near fp32; the scope restores TF32 and autocast.
//
// The tolerance: bf16 keeps 8 significant bits, so each operand of a matrix product is rounded by
// up to 2^-9 relative; with float32 accumulation a product's relative error is of that order per
// operand. The tiny model's path from pixels to map crosses about 10 products in sequence
// (encoder blocks, Q-Former, decoder, MAE blocks), whose rounding errors add at worst to
// 10 x 2 x 2^-9 = 0.04 of the largest value; maps and scores are held to 5e-2 of their largest
// fp32 value. (Rounding errors of independent signs mostly cancel: the test prints what it finds.)
TEST(Precision, Bf16ScoringIsNearFp32WhereTheDeviceHasBf16Units) {
  const auto device = test::test_device();
  if (!device.is_cuda() && !cpu_bf16_support().supported) {
    GTEST_SKIP() << "no bf16 units: neither QFAE_TEST_DEVICE=cuda nor AMX / AVX512-BF16";
  }
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
  EXPECT_TRUE(torch::isfinite(bf16.maps).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(bf16.scores).all().item<bool>());
  EXPECT_EQ(bf16.maps.scalar_type(), torch::kFloat32);
  const double scores_err = max_relative(bf16.scores, fp32.scores);
  const double maps_err = max_relative(bf16.maps, fp32.maps);
  std::cout << "[ bf16 ] on " << device << ": scores " << scores_err << ", maps " << maps_err
            << " of the largest fp32 value\n";
  EXPECT_LT(scores_err, 5e-2);
  EXPECT_LT(maps_err, 5e-2);
  EXPECT_FALSE(torch::equal(bf16.scores, fp32.scores)) << "bf16 should round something";
  {
    PrecisionScope outer(Precision::kBf16, device);
    if (device.is_cuda()) {
      PrecisionScope inner(Precision::kTf32, device);
      EXPECT_TRUE(compat::cuda_matmul_tf32());
    }
    const auto a = torch::randn({8, 8}, torch::TensorOptions().device(device));
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);  // outer autocast still on
    if (device.is_cuda()) EXPECT_FALSE(compat::cuda_matmul_tf32());
  }
  const auto a = torch::randn({8, 8}, torch::TensorOptions().device(device));
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat32);
}

// Training under CPU or CUDA bf16 autocast: the loss is finite and gradients reach the trainable
// parameters in float32 (on LibTorch 1.13 this needs torch_compat's mixed-dtype layer_norm rule).
TEST(Precision, Bf16AutocastTrainsTheAutoencoder) {
  const auto device = test::test_device();
  if (!device.is_cuda() && !cpu_bf16_support().supported) {
    GTEST_SKIP() << "no bf16 units: neither QFAE_TEST_DEVICE=cuda nor AMX / AVX512-BF16";
  }
  TempDir dir;
  const auto cfg = test::tiny_config(dir.path() / "data").config;
  AnomalyModel model(cfg, device);
  model.set_frozen_dtype(model.frozen_dtype_for(Precision::kBf16));
  const auto x = test_batch(cfg).to(device);
  auto& ae = model.autoencoder();
  ae->train();
  torch::Tensor loss;
  {
    PrecisionScope scope(Precision::kBf16, device);
    const auto x_hat = model.reconstruct(x);
    EXPECT_EQ(x_hat.scalar_type(), torch::kBFloat16) << "the decoder's last linear layer";
    loss = model.training_loss(x, x_hat).to(torch::kFloat32);
  }
  ASSERT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  int64_t with_grad = 0, total = 0;
  for (const auto& p : ae->parameters()) {
    if (!p.requires_grad()) continue;
    ++total;
    if (!p.grad().defined()) continue;
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    with_grad += p.grad().abs().sum().item<double>() > 0 ? 1 : 0;
  }
  EXPECT_GT(total, 0);
  EXPECT_GE(with_grad, total * 9 / 10) << "gradients reach the trainable parameters";
}

}  // namespace
}  // namespace qfae::anomaly
