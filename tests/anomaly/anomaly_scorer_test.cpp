// AnomalyScorer against docs/model.md §5 written out in torch ops: batches queued before the
// previous one is collected (how `qfae eval` and `qfae infer` overlap work) each get their own maps
// and scores, on the host; both reduction settings. QFAE_TEST_DEVICE=cuda runs it on the GPU.
#include "qfae/anomaly/anomaly_scorer.h"

#include <gtest/gtest.h>

#include "../support/run_binary.h"
#include "../support/test_device.h"
#include "../support/tiny_run.h"
#include "qfae/anomaly/anomaly_model.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"

using qfae::test::TempDir;

namespace qfae::anomaly {
namespace {

// docs/model.md §5 in plain torch ops, from the AnomalyModel's reconstruction and test-time layer
// maps (R, B, 1, H, W): the pixel map is their mean over layers; the image score reduces each
// layer's map over pixels (max or mean), then the layers (mean or max). Eval mode, no smoothing.
AnomalyOutput scored_by_hand(AnomalyModel& model, const torch::Tensor& images, bool max_over_pixels,
                             bool max_over_layers) {
  torch::NoGradGuard no_grad;
  auto& ae = model.autoencoder();
  const bool was_training = ae->is_training();
  ae->eval();
  const auto x = images.to(model.device());
  torch::Tensor maps;
  {
    PrecisionScope scope(Precision::kFp32, model.device());  // TF32 off on CUDA, as eval's fp32
    maps = model.test_distance().layer_maps(x, model.reconstruct(x)).to(torch::kCPU);
  }
  if (was_training) ae->train();
  const auto flat = maps.flatten(2);                                     // (R, B, H*W)
  const auto per_layer = max_over_pixels ? flat.amax(2) : flat.mean(2);  // (R, B)
  AnomalyOutput out;
  out.maps = maps.mean(0).squeeze(1);  // (B, H, W)
  out.scores = (max_over_layers ? per_layer.amax(0) : per_layer.mean(0)).to(torch::kDouble);
  return out;
}

// Same values up to float rounding order (reductions over pixels and layers in float32).
void expect_same_output(const AnomalyOutput& got, const AnomalyOutput& want, const char* what) {
  ASSERT_EQ(got.maps.sizes(), want.maps.sizes()) << what;
  ASSERT_EQ(got.scores.sizes(), want.scores.sizes()) << what;
  EXPECT_TRUE(torch::allclose(got.maps, want.maps, /*rtol=*/1e-6, /*atol=*/1e-7)) << what;
  EXPECT_TRUE(torch::allclose(got.scores, want.scores, /*rtol=*/1e-6, /*atol=*/1e-9)) << what;
}

struct ScorerTestBatches {
  torch::Tensor a, b;  // two different halves of the tiny test split
};

ScorerTestBatches scorer_test_batches(const config::Config& cfg, torch::Device device) {
  const auto index = data::index_dataset(cfg.data, 0);
  data::LoaderOptions o;
  o.batch_size = static_cast<int64_t>(index.test.size());
  o.pin_memory = device.is_cuda();  // as `qfae eval` loads them: copied to the GPU asynchronously
  data::Loader loader(index.test, cfg.data, o);
  loader.start_epoch(0);
  data::Batch batch;
  EXPECT_TRUE(loader.next(batch));
  EXPECT_GE(batch.images.size(0), 4);
  const auto half = batch.images.size(0) / 2;
  return {batch.images.slice(0, 0, half), batch.images.slice(0, half)};
}

TEST(AnomalyScorer, QueuedBatchesEachGetTheirOwnOutputOnTheHost) {
  TempDir dir;
  const auto device = test::test_device();
  const auto cfg = test::tiny_config(dir.path() / "data").config;
  AnomalyModel model(cfg, device);
  const auto [a, b] = scorer_test_batches(cfg, device);
  ASSERT_EQ(cfg.eval.pixel_reduction, "max");  // the defaults (brain, RESC, liver)
  ASSERT_EQ(cfg.eval.layer_reduction, "mean");

  AnomalyScorer scorer(model, cfg.eval);
  model.autoencoder()->train();
  const auto want_a =
      scored_by_hand(model, a, /*max_over_pixels=*/true, /*max_over_layers=*/false);
  const auto want_b = scored_by_hand(model, b, true, false);
  // The two halves are different images: a mix-up of buffers would not pass the checks below.
  ASSERT_FALSE(torch::allclose(want_a.scores, want_b.scores.slice(0, 0, a.size(0))));

  // Three batches in flight (b, a, b) before any is collected, then collected out of order.
  auto pending_b = scorer.submit(b);
  auto pending_a = scorer.submit(a);
  auto pending_b2 = scorer.submit(b);
  EXPECT_TRUE(model.autoencoder()->is_training()) << "the scorer restores the training mode";
  const auto got_a = pending_a.get();
  const auto got_b2 = pending_b2.get();
  const auto got_b = pending_b.get();
  for (const auto* out : {&got_a, &got_b, &got_b2}) {
    EXPECT_TRUE(out->maps.device().is_cpu());
    EXPECT_TRUE(out->scores.device().is_cpu());
    EXPECT_EQ(out->maps.scalar_type(), torch::kFloat32);
    EXPECT_EQ(out->scores.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(out->maps.is_contiguous());
  }
  expect_same_output(got_a, want_a, "a");
  expect_same_output(got_b, want_b, "b");
  expect_same_output(got_b2, want_b, "b again");
}

TEST(AnomalyScorer, ChestReductionsMeanOverPixelsThenMaxOverLayers) {
  TempDir dir;
  const auto device = test::test_device();
  const auto cfg = test::tiny_config(dir.path() / "data",
                                     {"eval.pixel_reduction=mean", "eval.layer_reduction=max"})
                       .config;
  AnomalyModel model(cfg, device);
  const auto batches = scorer_test_batches(cfg, device);
  AnomalyScorer scorer(model, cfg.eval);
  expect_same_output(scorer(batches.a),
                     scored_by_hand(model, batches.a, /*max_over_pixels=*/false,
                                    /*max_over_layers=*/true),
                     "mean over pixels, max over layers");
}

}  // namespace
}  // namespace qfae::anomaly
