// AnomalyScorer::submit: batches queued before the previous one is collected (how `qfae eval` and
// `qfae infer` overlap host and device work) each get their own maps and scores, on the host.
// QFAE_TEST_DEVICE=cuda runs it on the GPU, where the copies back are asynchronous.
#include "qfae/pipeline/anomaly_scorer.h"

#include <gtest/gtest.h>

#include "../support/run_binary.h"
#include "../support/test_device.h"
#include "../support/tiny_run.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/pipeline/anomaly_model.h"

using qfae::test::TempDir;

namespace qfae::pipeline {
namespace {

TEST(AnomalyScorer, QueuedBatchesEachGetTheirOwnOutputOnTheHost) {
  TempDir dir;
  const auto device = test::test_device();
  const auto cfg = test::tiny_config(dir.path() / "data").config;
  AnomalyModel model(cfg, device);
  const auto index = data::index_dataset(cfg.data, 0);
  data::LoaderOptions o;
  o.batch_size = static_cast<int64_t>(index.test.size());
  o.pin_memory = device.is_cuda();  // as `qfae eval` loads them: copied to the GPU asynchronously
  data::Loader loader(index.test, cfg.data, o);
  loader.start_epoch(0);
  data::Batch batch;
  ASSERT_TRUE(loader.next(batch));
  ASSERT_GE(batch.images.size(0), 4);
  const auto half = batch.images.size(0) / 2;
  const auto a = batch.images.slice(0, 0, half), b = batch.images.slice(0, half);

  AnomalyScorer scorer(model, cfg.eval);
  model.autoencoder()->train();
  const auto alone_a = scorer(a);
  const auto alone_b = scorer(b);
  EXPECT_TRUE(model.autoencoder()->is_training()) << "the scorer restores the training mode";

  // Three batches in flight (b, a, b) before any is collected, then collected out of order.
  auto pending_b = scorer.submit(b);
  auto pending_a = scorer.submit(a);
  auto pending_b2 = scorer.submit(b);
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
  ASSERT_EQ(got_a.maps.sizes(), alone_a.maps.sizes());
  ASSERT_EQ(got_b.scores.sizes(), alone_b.scores.sizes());
  EXPECT_TRUE(torch::allclose(got_a.maps, alone_a.maps, /*rtol=*/1e-6, /*atol=*/1e-7));
  EXPECT_TRUE(torch::allclose(got_a.scores, alone_a.scores, /*rtol=*/1e-6, /*atol=*/1e-9));
  EXPECT_TRUE(torch::allclose(got_b.maps, alone_b.maps, /*rtol=*/1e-6, /*atol=*/1e-7));
  EXPECT_TRUE(torch::allclose(got_b.scores, alone_b.scores, /*rtol=*/1e-6, /*atol=*/1e-9));
  EXPECT_TRUE(torch::equal(got_b.scores, got_b2.scores));
  // The two halves are different images: a mix-up of buffers would not pass the checks above.
  EXPECT_FALSE(torch::allclose(alone_a.scores, alone_b.scores.slice(0, 0, half)));
}

}  // namespace
}  // namespace qfae::pipeline
