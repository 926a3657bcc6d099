// Training loader throughput for `qfae bench --mode loader`.
#include "qfae/bench/loader_throughput.h"

#include <chrono>
#include <cstdio>
#include <sstream>

#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/train/trainer.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::bench {

LoaderBenchResult loader_throughput(const config::Config& cfg, const LoaderBenchOptions& options) {
  if (options.batch_size < 1 || options.warmup < 0 || options.batches < 1) {
    throw UserError("bench --mode loader: batch size and timed batches >= 1, warm-up >= 0");
  }
  const auto index = data::index_dataset(cfg.data, static_cast<uint64_t>(cfg.train.seed));
  if (index.train.empty()) {
    throw UserError("data.root: '" + cfg.data.root + "' has no training images");
  }
  auto lo = train::training_loader_options(cfg, options.pin_memory);
  lo.batch_size = options.batch_size;
  lo.workers = options.workers;
  data::Loader loader(index.train, cfg.data, lo);
  if (loader.batches_per_epoch() == 0) {
    throw UserError("bench --batch-size: " + std::to_string(options.batch_size) +
                    " is larger than the " + std::to_string(index.train.size()) +
                    " training images of '" + cfg.data.root + "'");
  }

  LoaderBenchResult r;
  r.root = cfg.data.root;
  r.image_size = cfg.data.image_size;
  r.batch_size = options.batch_size;
  r.workers = loader.workers();
  r.warmup = options.warmup;
  r.train_images = static_cast<int64_t>(index.train.size());
  r.augment = cfg.data.augment;
  r.pinned = options.pin_memory;

  using Clock = std::chrono::steady_clock;
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  data::Batch batch;
  auto take = [&] {
    while (!loader.next(batch)) loader.start_epoch(++epoch);
    return batch.images.size(0);
  };
  for (int64_t i = 0; i < options.warmup; ++i) take();
  const auto start = Clock::now();
  auto last = start;
  for (int64_t i = 0; i < options.batches; ++i) {
    r.images += take();
    const auto now = Clock::now();
    r.batch_seconds.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
  }
  r.batches = options.batches;
  r.seconds = std::chrono::duration<double>(last - start).count();
  r.images_per_s = static_cast<double>(r.images) / r.seconds;
  r.images_per_s_per_worker = r.images_per_s / static_cast<double>(r.workers);
  log("bench")->info("loader: {} images in {:.2f} s, {:.1f} images/s with {} workers", r.images,
                     r.seconds, r.images_per_s, r.workers);
  return r;
}

nlohmann::json to_json(const LoaderBenchResult& r) {
  return {{"phase", "loader"},
          {"root", r.root},
          {"image_size", r.image_size},
          {"batch_size", r.batch_size},
          {"workers", r.workers},
          {"augment", r.augment},
          {"pinned", r.pinned},
          {"train_images", r.train_images},
          {"warmup_batches", r.warmup},
          {"batches", r.batches},
          {"images", r.images},
          {"seconds", r.seconds},
          {"images_per_s", r.images_per_s},
          {"images_per_s_per_worker", r.images_per_s_per_worker},
          {"batch_seconds", r.batch_seconds}};
}

std::string format_result(const LoaderBenchResult& r) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line),
                "qfae bench loader: %s, %lld px, batch %lld, %s, %lld workers, %lld warm-up + "
                "%lld timed batches\n",
                r.root.c_str(), static_cast<long long>(r.image_size),
                static_cast<long long>(r.batch_size), r.augment ? "augmented" : "not augmented",
                static_cast<long long>(r.workers), static_cast<long long>(r.warmup),
                static_cast<long long>(r.batches));
  out << line;
  std::snprintf(
      line, sizeof(line), "loader %10.1f images/s  (%.1f per worker; %lld images in %.2f s)\n",
      r.images_per_s, r.images_per_s_per_worker, static_cast<long long>(r.images), r.seconds);
  out << line;
  return out.str();
}

}  // namespace qfae::bench
