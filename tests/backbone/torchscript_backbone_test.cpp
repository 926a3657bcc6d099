// TorchScriptBackbone on the tiny fixtures of scripts/fixtures/make_test_backbones.py: values
// against the eager PyTorch reference (tiny_reference.pt), frozen gradients, and the errors users
// will meet.
#include "qfae/backbone/torchscript_backbone.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "../support/run_binary.h"
#include "qfae/util/error.h"
#include "../support/user_error.h"

using qfae::UserError;
using qfae::backbone::TorchScriptBackbone;
using qfae::test::TempDir;

namespace {

std::string fixture(const std::string& name) {
  return std::string(QFAE_TEST_FIXTURES) + "/backbones/" + name;
}

// input, dino_l1, dino_l3, mae_p8_l3, mae_p16_l3: computed by an eager ViT in Python.
std::map<std::string, torch::Tensor> reference() {
  auto module = torch::jit::load(fixture("tiny_reference.pt"));
  std::map<std::string, torch::Tensor> out;
  for (const auto& buffer : module.named_buffers()) out[buffer.name] = buffer.value;
  return out;
}


void expect_close(const torch::Tensor& got, const torch::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-5, /*atol=*/1e-5))
      << "max |diff| " << (got - want).abs().max().item<double>();
}

}  // namespace

TEST(BackboneLoad, ReadsTheDescription) {
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  const auto& d = dino.description();
  EXPECT_EQ(d.model, "test_tiny_dinov2_reg");
  EXPECT_EQ(d.image_size, 32);
  EXPECT_EQ(d.patch_sizes, (std::vector<int64_t>{8}));
  EXPECT_EQ(d.grids, (std::vector<int64_t>{4}));
  EXPECT_EQ(d.num_prefix, 5);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.depth, 4);
  EXPECT_EQ(d.blocks, 4);
  ASSERT_EQ(d.mean.size(), 3u);
  EXPECT_DOUBLE_EQ(d.mean[0], 0.485);
  // Patch conv 32*3*8*8 + 32, pos embed 16*32 (patch tokens only), prefix 5*32, 4 blocks.
  const int64_t block = 2 * 64 + 32 * 96 + 96 + 32 * 32 + 32 + 32 * 128 + 128 + 128 * 32 + 32 + 64;
  EXPECT_EQ(dino.num_parameters(), 32 * 3 * 64 + 32 + 16 * 32 + 5 * 32 + 4 * block);
  for (const auto& p : dino.parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(BackboneForward, DinoTapsMatchThePythonReference) {
  const auto ref = reference();
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  const auto out = dino.forward(ref.at("input"), {-1, -3});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{1, 5 + 16, 32}));
  expect_close(out[0], ref.at("dino_l3"));  // order as given: -1 = block 3, -3 = block 1
  expect_close(out[1], ref.at("dino_l1"));
  EXPECT_FALSE(out[0].requires_grad());
  EXPECT_FALSE(out[0].grad_fn());

  const auto batch = dino.forward(ref.at("input").repeat({3, 1, 1, 1}), {1});
  EXPECT_EQ(batch[0].sizes(), (std::vector<int64_t>{3, 21, 32}));
  expect_close(batch[0][2].unsqueeze(0), ref.at("dino_l1"));
}

TEST(BackboneForward, MaeAtEachPatchSize) {
  const auto ref = reference();
  TorchScriptBackbone mae(fixture("tiny_mae.pt"), torch::kCPU);
  EXPECT_EQ(mae.grid(0), 4);
  EXPECT_EQ(mae.grid(8), 4);
  EXPECT_EQ(mae.grid(16), 2);
  EXPECT_NE(qfae::test::user_error([&] { mae.grid(12); }).find("no patch size 12"), std::string::npos);
  expect_close(mae.forward(ref.at("input"), {3}, 8)[0], ref.at("mae_p8_l3"));
  expect_close(mae.forward(ref.at("input"), {3})[0], ref.at("mae_p8_l3"));
  const auto p16 = mae.forward(ref.at("input"), {-1}, 16)[0];
  EXPECT_EQ(p16.sizes(), (std::vector<int64_t>{1, 1 + 2 * 2, 32}));
  expect_close(p16, ref.at("mae_p16_l3"));
}

TEST(BackboneForward, GradientsReachTheImagesOnly) {
  const auto ref = reference();
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  auto images = ref.at("input").clone().requires_grad_(true);
  const auto out = dino.forward(images, {-1, -3});
  ASSERT_TRUE(out[0].grad_fn());
  (out[0].square().sum() + out[1].sum()).backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0.0);
  for (const auto& p : dino.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(BackboneForward, ConvertsToTheModuleDtype) {
  const auto ref = reference();
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  dino.to(torch::kCPU, torch::kFloat64);
  const auto out = dino.forward(ref.at("input"), {1})[0];
  EXPECT_EQ(out.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat32), ref.at("dino_l1"), 1e-4, 1e-4));
  for (const auto& p : dino.parameters()) EXPECT_FALSE(p.requires_grad());
}

// bf16 weights (the frozen networks under bf16 precision): float32 out, near the float32 values,
// and still differentiable in the images.
TEST(BackboneForward, Bf16WeightsGiveFloat32OutputsNearTheReference) {
  const auto ref = reference();
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  dino.to(torch::kCPU, torch::kBFloat16);
  for (const auto& p : dino.parameters()) {
    EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
    EXPECT_FALSE(p.requires_grad());
  }
  auto images = ref.at("input").clone().requires_grad_(true);
  const auto out = dino.forward(images, {1, 3});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].scalar_type(), torch::kFloat32);
  for (const auto& [got, name] : {std::pair{out[0], "dino_l1"}, std::pair{out[1], "dino_l3"}}) {
    const auto want = ref.at(name);
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 2e-2) << name;
    EXPECT_GT(rel, 0.0) << name << ": bf16 weights should round something";
  }
  out[1].sum().backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_EQ(images.grad().scalar_type(), torch::kFloat32);
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0.0);
}

// Back to float32 after bf16 (validation and evaluation after bf16 training): the loaded weights
// again, bit for bit, not the bf16-rounded ones widened, so scores equal a fresh load's.
TEST(BackboneForward, Float32AfterBf16IsTheLoadedWeightsExactly) {
  const auto ref = reference();
  TorchScriptBackbone loaded(fixture("tiny_dino.pt"), torch::kCPU);
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  for (int round = 0; round < 2; ++round) {
    dino.to(torch::kCPU, torch::kBFloat16);
    dino.to(torch::kCPU, torch::kFloat32);
    const auto want = loaded.parameters(), got = dino.parameters();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(got[i], want[i])) << "parameter " << i << ", round " << round;
      EXPECT_FALSE(got[i].requires_grad());
    }
    EXPECT_TRUE(torch::equal(dino.forward(ref.at("input"), {3})[0],
                             loaded.forward(ref.at("input"), {3})[0]));
  }
}

TEST(BackboneForward, RejectsBadImages) {
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  EXPECT_THROW(dino.forward(torch::zeros({1, 3, 64, 64}), {1}), c10::Error);
  EXPECT_THROW(dino.forward(torch::zeros({1, 1, 32, 32}), {1}), c10::Error);
  EXPECT_THROW(dino.forward(torch::zeros({3, 32, 32}), {1}), c10::Error);
}

TEST(BackboneTaps, ResolvesPythonStyleIndices) {
  TorchScriptBackbone dino(fixture("tiny_dino.pt"), torch::kCPU);
  EXPECT_EQ(dino.resolve_taps({-1, -4, 0, 2}), (std::vector<int64_t>{3, 0, 0, 2}));
  EXPECT_NE(qfae::test::user_error([&] { dino.resolve_taps({4}); }).find("tap 4 is outside"), std::string::npos);
  EXPECT_NE(qfae::test::user_error([&] { dino.resolve_taps({-5}); }).find("tiny_dino.pt"), std::string::npos);
  EXPECT_FALSE(qfae::test::user_error([&] { dino.resolve_taps({}); }).empty());
}

TEST(BackboneTaps, TruncatedExportRefusesDeeperTaps) {
  const auto ref = reference();
  TorchScriptBackbone b2(fixture("tiny_dino_blocks2.pt"), torch::kCPU);
  EXPECT_EQ(b2.description().blocks, 2);
  EXPECT_EQ(b2.description().depth, 4);
  expect_close(b2.forward(ref.at("input"), {1})[0], ref.at("dino_l1"));
  const auto msg = qfae::test::user_error([&] { b2.resolve_taps({3}); });
  EXPECT_NE(msg.find("tiny_dino_blocks2.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--blocks 4"), std::string::npos) << msg;
  EXPECT_FALSE(qfae::test::user_error([&] { b2.resolve_taps({-1}); }).empty());  // block 3 of 4
  EXPECT_EQ(b2.resolve_taps({-3}), (std::vector<int64_t>{1}));
}

// Each check states what the file holds and what was asked, and names the file; no config key:
// which key asked is the caller's to say (tests/anomaly/anomaly_model_test.cpp).
TEST(BackboneCheck, RefusesMismatchesNamingTheFileAndBothValues) {
  TorchScriptBackbone mae(fixture("tiny_mae.pt"), torch::kCPU);
  EXPECT_NO_THROW(mae.require_model("test_tiny_mae"));
  EXPECT_NO_THROW(mae.require_model(""));
  EXPECT_NO_THROW(mae.require_image_size(32));
  EXPECT_NO_THROW(mae.require_image_size(0));
  EXPECT_NO_THROW(mae.require_width(32));
  EXPECT_NO_THROW(mae.require_width(0));
  EXPECT_NO_THROW(mae.require_patch_sizes({16, 8}));
  EXPECT_NO_THROW(mae.resolve_taps({-1, 0, 3}));

  auto expect_refused = [&](const std::function<void()>& check,
                            const std::vector<std::string>& parts) {
    const auto msg = qfae::test::user_error(check);
    ASSERT_FALSE(msg.empty());
    for (const auto& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind(fixture("tiny_mae.pt"), 0), 0u) << msg;
    for (const char* section : {"backbone.", "data.", "loss.", "eval.", "key"}) {
      EXPECT_EQ(msg.find(section), std::string::npos) << msg;
    }
  };
  expect_refused([&] { mae.require_image_size(224); }, {"image size 32, not 224"});
  expect_refused([&] { mae.require_width(1024); }, {"width 32, not 1024"});
  expect_refused([&] { mae.require_model("vit_large_patch16_224.mae"); },
                 {"'test_tiny_mae', not 'vit_large_patch16_224.mae'"});
  expect_refused([&] { mae.require_patch_sizes({8, 56}); }, {"[8, 16], not 56", "--patch-size"});
  expect_refused([&] { mae.resolve_taps({1, 4}); }, {"tap 4", "4 blocks"});
}

TEST(BackboneLoad, BadFilesGiveUserErrorsNamingTheFile) {
  TempDir dir;
  const std::string missing = (dir.path() / "nowhere.pt").string();
  auto msg = qfae::test::user_error([&] { TorchScriptBackbone(missing, torch::kCPU); });
  EXPECT_NE(msg.find("nowhere.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;

  const auto garbage = dir.write("garbage.pt", "this is not a zip archive\n").string();
  msg = qfae::test::user_error([&] { TorchScriptBackbone(garbage, torch::kCPU); });
  EXPECT_NE(msg.find("garbage.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a TorchScript file"), std::string::npos) << msg;

  // TorchScript, but not from the exporter: no qfae.json inside.
  msg = qfae::test::user_error([&] { TorchScriptBackbone(fixture("tiny_reference.pt"), torch::kCPU); });
  EXPECT_NE(msg.find("tiny_reference.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no qfae.json"), std::string::npos) << msg;

  auto module = torch::jit::load(fixture("tiny_dino.pt"));
  const auto bad_json = (dir.path() / "bad_json.pt").string();
  module.save(bad_json, {{"qfae.json", "{\"format\": 1, \"model\": "}});
  msg = qfae::test::user_error([&] { TorchScriptBackbone(bad_json, torch::kCPU); });
  EXPECT_NE(msg.find("bad_json.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed qfae.json"), std::string::npos) << msg;

  const auto no_width = (dir.path() / "no_width.pt").string();
  module.save(no_width, {{"qfae.json", R"({"format": 1, "model": "m", "image_size": 32,
      "patch_sizes": [8], "grids": [4], "num_prefix": 5, "depth": 4, "blocks": 4,
      "mean": [0, 0, 0], "std": [1, 1, 1]})"}});
  msg = qfae::test::user_error([&] { TorchScriptBackbone(no_width, torch::kCPU); });
  EXPECT_NE(msg.find("no_width.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("width"), std::string::npos) << msg;

  const auto wrong_grid = (dir.path() / "wrong_grid.pt").string();
  module.save(wrong_grid, {{"qfae.json", R"({"format": 1, "model": "m", "image_size": 32,
      "patch_sizes": [8], "grids": [5], "num_prefix": 5, "width": 32, "depth": 4, "blocks": 4,
      "mean": [0, 0, 0], "std": [1, 1, 1]})"}});
  msg = qfae::test::user_error([&] { TorchScriptBackbone(wrong_grid, torch::kCPU); });
  EXPECT_NE(msg.find("wrong_grid.pt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("grid 5"), std::string::npos) << msg;
}
