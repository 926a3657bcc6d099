// The threaded loader: same batches for any worker count, shuffling, drop_last, bad images.
#include "qfae/data/loader.h"

#include <gtest/gtest.h>

#include <set>

#include "../support/run_binary.h"
#include "../support/tree_util.h"

namespace fs = std::filesystem;
using qfae::data::Batch;
using qfae::data::Loader;
using qfae::data::LoaderOptions;
using qfae::data::Sample;
using qfae::test::TempDir;

namespace {

// n small grey images with distinct values; every third one anomalous with a full mask.
std::vector<Sample> make_samples(const fs::path& dir, int n) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.image = qfae::test::grey_png(dir / ("i" + std::to_string(i) + ".png"), 10, 0.05 * i + 0.1);
    s.label = i % 3 == 2 ? 1 : 0;
    if (s.label) s.mask = qfae::test::grey_png(dir / ("m" + std::to_string(i) + ".png"), 10, 1.0);
    out.push_back(s);
  }
  return out;
}

qfae::config::DataConfig small_config() {
  qfae::config::DataConfig cfg;
  cfg.image_size = 8;
  return cfg;
}

std::vector<Batch> epoch(Loader& loader, int64_t e) {
  loader.start_epoch(e);
  std::vector<Batch> out;
  for (Batch b; loader.next(b);) out.push_back(b);
  return out;
}

}  // namespace

TEST(Loader, SameBatchesWithOneAndThreeWorkers) {
  TempDir dir;
  const auto samples = make_samples(dir.path(), 10);
  LoaderOptions opt;
  opt.batch_size = 3;
  opt.shuffle = true;
  opt.augment = true;
  opt.seed = 42;
  opt.prefetch = 2;
  opt.workers = 1;
  Loader one(samples, small_config(), opt);
  opt.workers = 3;
  Loader three(samples, small_config(), opt);
  for (int64_t e = 0; e < 2; ++e) {
    const auto a = epoch(one, e), b = epoch(three, e);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].indices, b[i].indices);
      EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "epoch " << e << " batch " << i;
      EXPECT_TRUE(torch::equal(a[i].masks, b[i].masks));
      EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels));
    }
  }
}

TEST(Loader, BatchesCarryShapesLabelsMasksAndPaths) {
  TempDir dir;
  const auto samples = make_samples(dir.path(), 4);
  LoaderOptions opt;
  opt.batch_size = 4;
  Loader loader(samples, small_config(), opt);
  const auto batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  const auto& b = batches[0];
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_EQ(b.masks.sizes(), (std::vector<int64_t>{4, 1, 8, 8}));
  EXPECT_EQ(b.labels.dtype(), torch::kInt64);
  EXPECT_EQ(b.indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(b.paths[2], samples[2].image);
  EXPECT_EQ(b.labels[2].item<int64_t>(), 1);
  EXPECT_EQ(b.masks[2].sum().item<float>(), 64.0f);
  EXPECT_EQ(b.masks[1].sum().item<float>(), 0.0f);
  // Unaugmented grey value 0.1 + 0.05 * 1 = 0.15, rounded to 8 bits, then normalised.
  const double v = std::round(0.15 * 255) / 255;
  EXPECT_NEAR(b.images[1][2][3][4].item<float>(), (v - 0.449) / 0.226, 1e-5);
}

TEST(Loader, ShuffleIsSeededPerEpochAndDropLastIsRespected) {
  TempDir dir;
  const auto samples = make_samples(dir.path(), 10);
  LoaderOptions opt;
  opt.batch_size = 3;
  opt.shuffle = true;
  opt.seed = 5;
  opt.workers = 2;
  Loader keep(samples, small_config(), opt);
  EXPECT_EQ(keep.batches_per_epoch(), 4);
  auto order = [](const std::vector<Batch>& bs) {
    std::vector<int64_t> o;
    for (const auto& b : bs) o.insert(o.end(), b.indices.begin(), b.indices.end());
    return o;
  };
  const auto e0 = order(epoch(keep, 0)), e0b = order(epoch(keep, 0)), e1 = order(epoch(keep, 1));
  EXPECT_EQ(e0, e0b);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(std::set<int64_t>(e0.begin(), e0.end()).size(), 10u);
  EXPECT_EQ(epoch(keep, 0).back().indices.size(), 1u);
  opt.drop_last = true;
  Loader drop(samples, small_config(), opt);
  EXPECT_EQ(drop.batches_per_epoch(), 3);
  const auto batches = epoch(drop, 0);
  ASSERT_EQ(batches.size(), 3u);
  for (const auto& b : batches) EXPECT_EQ(b.images.size(0), 3);
  // Same seed and epoch: drop_last only cuts the tail of the same order.
  const auto dropped = order(batches);
  EXPECT_EQ(dropped, std::vector<int64_t>(e0.begin(), e0.begin() + 9));
}

TEST(Loader, BadImageFailsWithTheFileNameAndNoHang) {
  TempDir dir;
  auto samples = make_samples(dir.path(), 8);
  samples[5].image = qfae::test::touch(dir.path() / "zero.png");
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.workers = 3;
  Loader loader(samples, small_config(), opt);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the loader can start over after a failure
    loader.start_epoch(0);
    Batch b;
    int good = 0;
    const auto msg = qfae::test::user_error([&] {
      while (loader.next(b)) ++good;
    });
    EXPECT_NE(msg.find("zero.png"), std::string::npos) << msg;
    EXPECT_EQ(good, 2);  // batches 0 and 1 came out before batch 2 (samples 4, 5) failed
    EXPECT_FALSE(loader.next(b));
  }
  EXPECT_TRUE(loader.skipped().empty());
}

TEST(Loader, BadImagesAreSkippedAndListedOnce) {
  TempDir dir;
  auto samples = make_samples(dir.path(), 7);
  samples[1].image = qfae::test::touch(dir.path() / "zero.png");
  samples[4].mask = qfae::test::grey_png(dir.path() / "small_mask.png", 4, 1.0);
  samples[4].label = 1;
  auto cfg = small_config();
  cfg.on_bad_image = "skip";
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.workers = 2;
  Loader loader(samples, cfg, opt);
  for (int64_t e = 0; e < 2; ++e) {
    std::vector<int64_t> seen;
    for (const auto& b : epoch(loader, e)) {
      EXPECT_EQ(b.images.size(0), static_cast<int64_t>(b.indices.size()));
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    EXPECT_EQ(seen, (std::vector<int64_t>{0, 2, 3, 5, 6}));
  }
  const auto skipped = loader.skipped();
  ASSERT_EQ(skipped.size(), 2u);
  std::set<std::string> paths{skipped[0].path, skipped[1].path};
  EXPECT_TRUE(paths.count(samples[1].image));
  EXPECT_TRUE(paths.count(samples[4].image));
  for (const auto& s : skipped) EXPECT_FALSE(s.reason.empty());
}

TEST(Loader, EveryoneSkippedMeansNoBatches) {
  TempDir dir;
  std::vector<Sample> samples{{qfae::test::touch(dir.path() / "a.png"), 0, "", ""}};
  auto cfg = small_config();
  cfg.on_bad_image = "skip";
  Loader loader(samples, cfg, LoaderOptions{});
  EXPECT_TRUE(epoch(loader, 0).empty());
  EXPECT_EQ(loader.skipped().size(), 1u);
}

TEST(Loader, ShardsSplitEachBatchIntoTheRowsOneProcessWouldRead) {
  TempDir dir;
  const auto samples = make_samples(dir.path(), 13);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = true;
  opt.augment = true;
  opt.drop_last = true;
  opt.seed = 9;
  opt.workers = 2;
  Loader whole(samples, small_config(), opt);
  opt.shards = 2;
  opt.shard = 0;
  Loader first(samples, small_config(), opt);
  opt.shard = 1;
  Loader second(samples, small_config(), opt);
  EXPECT_EQ(first.batches_per_epoch(), whole.batches_per_epoch());
  for (int64_t e = 0; e < 2; ++e) {
    const auto w = epoch(whole, e), a = epoch(first, e), b = epoch(second, e);
    ASSERT_EQ(w.size(), 3u);
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    for (size_t i = 0; i < w.size(); ++i) {
      // Rows 0-1 and 2-3 of the same batch, augmented the same (per-sample seeds).
      EXPECT_EQ(a[i].indices, std::vector<int64_t>(w[i].indices.begin(), w[i].indices.begin() + 2));
      EXPECT_EQ(b[i].indices, std::vector<int64_t>(w[i].indices.begin() + 2, w[i].indices.end()));
      EXPECT_TRUE(torch::equal(torch::cat({a[i].images, b[i].images}), w[i].images));
    }
  }
  opt.batch_size = 3;  // does not divide by 2 shards
  EXPECT_THROW(Loader(samples, small_config(), opt), c10::Error);
}
