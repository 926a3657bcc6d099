// Multi-threaded batch loader with prefetch. Worker threads decode and augment samples ahead of
// the consumer; batches come out in plan order and are identical for any number of workers.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qfae/config/config.h"
#include "qfae/data/dataset.h"
#include "qfae/data/load_sample.h"

namespace qfae::data {

struct Batch {
  torch::Tensor images;            // (B, 3, S, S) float32, normalised
  torch::Tensor masks;             // (B, 1, S, S) float32 0/1, zeros where a sample has no mask
  torch::Tensor labels;            // (B) int64, 0 normal, 1 anomalous
  std::vector<int64_t> indices;    // positions of the samples in the loader's sample list
  std::vector<std::string> paths;  // their image files
};

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;     // a new order each epoch, from (seed, epoch)
  bool drop_last = false;   // drop the last partial batch (training)
  bool augment = false;     // docs/model.md §6.3 training augmentation, seeded per sample
  uint64_t seed = 0;        // shuffling and per-sample augmentation
  int64_t workers = -1;     // threads; -1 = cfg.workers, where 0 = one per core
  int64_t prefetch = 4;     // batches that may be loaded ahead of the consumer
  bool pin_memory = false;  // batch images in page-locked memory (CUDA builds, for async copies)
  // Data-parallel: this process loads part `shard` of `shards` of each batch (contiguous, near
  // equal: batch_size / shards each when it divides), and a part whose images were all skipped
  // still comes out, empty, so that every rank takes every step.
  int64_t shard = 0, shards = 1;
  // A batch whose images were all skipped comes out empty instead of being passed over (what a
  // data-parallel evaluation needs to keep its ranks in step). Implied by shards > 1.
  bool keep_empty = false;
  // Every image that fails to load is skipped, whatever data.on_bad_image says and whatever the
  // error (qfae infer, which keeps a row for each); skipped() says why.
  bool skip_bad_images = false;
};

class Loader {
 public:
  Loader(std::vector<Sample> samples, config::DataConfig cfg, LoaderOptions options);
  ~Loader();  // stops and joins the workers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) an epoch: the order, when shuffled, is a permutation drawn from
  // (seed, epoch), and sample i is augmented with sample_seed(seed, epoch, i). Any epoch still
  // running is abandoned first.
  void start_epoch(int64_t epoch);

  // The next batch of the current epoch; false when the epoch is over (or none was started).
  // With shards > 1 a batch may be empty (images undefined, no indices).
  // With on_bad_image: fail, a sample's UserError is rethrown here after the workers are joined,
  // and the epoch ends. With skip, bad samples are left out of their batch (a batch with none
  // left is skipped), logged once per file and listed by skipped().
  bool next(Batch& batch);

  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  int64_t batches_per_epoch() const;
  // Batches of this epoch's plan the consumer is past, those passed over because every image of
  // them was skipped included (so a resumed epoch knows where it stood).
  int64_t batches_consumed() const;
  int64_t workers() const { return workers_; }
  const std::vector<Sample>& samples() const { return samples_; }
  // Every file skipped so far, in the order first met, each once.
  std::vector<SkippedImage> skipped() const;

 private:
  struct Slot {  // one batch being loaded
    std::vector<LoadedSample> items;
    std::vector<std::exception_ptr> errors;
    int64_t remaining = 0;
    bool ready = false;
    Batch batch;
    std::exception_ptr error;
  };
  void worker_loop();
  void finish_slot(int64_t b, Slot& slot);
  void stop_workers();

  std::vector<Sample> samples_;
  config::DataConfig cfg_;
  LoaderOptions options_;
  int64_t workers_ = 1;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
  std::vector<std::vector<int64_t>> plan_;  // sample indices of each batch of the epoch
  int64_t epoch_ = 0;
  int64_t claim_batch_ = 0, claim_pos_ = 0;  // next item a worker takes
  int64_t consumed_ = 0;                     // next batch the consumer returns
  std::map<int64_t, Slot> slots_;
  bool stop_ = false;
  std::vector<SkippedImage> skipped_;
  std::set<std::string> skipped_paths_;
};

}  // namespace qfae::data
