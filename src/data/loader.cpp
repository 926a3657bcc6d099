// Loader: workers claim samples in plan order, at most `prefetch` batches ahead of the consumer;
// the worker finishing a batch stacks it; the consumer takes batches strictly in order.
#include "qfae/data/loader.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "qfae/data/random.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::data {

Loader::Loader(std::vector<Sample> samples, config::DataConfig cfg, LoaderOptions options)
    : samples_(std::move(samples)), cfg_(std::move(cfg)), options_(options) {
  TORCH_CHECK(options_.batch_size > 0, "Loader: batch_size must be > 0, got ", options_.batch_size);
  TORCH_CHECK(options_.shards == 1 || (options_.drop_last && options_.shard >= 0 &&
                                       options_.shard < options_.shards &&
                                       options_.batch_size % options_.shards == 0),
              "Loader: shard ", options_.shard, " of ", options_.shards,
              " needs drop_last and a batch size that divides by the shards, got ",
              options_.batch_size);
  int64_t w = options_.workers >= 0 ? options_.workers : cfg_.workers;
  // 0: one per core this process was given (init_threads: the usable cores, shared among the
  // ranks of the machine), so 8 ranks on 64 cores start 8 loader threads each, not 64.
  if (w <= 0) w = std::max<int64_t>(1, at::get_num_threads());
  workers_ = w;
  options_.prefetch = std::max<int64_t>(1, options_.prefetch);
}

Loader::~Loader() { stop_workers(); }

int64_t Loader::batches_per_epoch() const {
  const int64_t n = size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<SkippedImage> Loader::skipped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skipped_;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
  slots_.clear();
  plan_.clear();
  claim_batch_ = claim_pos_ = consumed_ = 0;
}

void Loader::start_epoch(int64_t epoch) {
  stop_workers();
  const int64_t n = size(), b = options_.batch_size;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (options_.shuffle) {
    order = permutation(n, mix_seed(options_.seed ^ mix_seed(static_cast<uint64_t>(epoch))));
  }
  std::vector<std::vector<int64_t>> plan;
  for (int64_t start = 0; start < n; start += b) {
    const int64_t end = std::min(n, start + b);
    if (options_.drop_last && end - start < b) break;
    // This process's part of the batch: the same rows a single process would take there.
    const int64_t from = start + (end - start) * options_.shard / options_.shards;
    const int64_t to = start + (end - start) * (options_.shard + 1) / options_.shards;
    plan.emplace_back(order.begin() + from, order.begin() + to);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    plan_ = std::move(plan);
    epoch_ = epoch;
  }
  int64_t items = 0;
  for (const auto& batch : plan_) items += static_cast<int64_t>(batch.size());
  const int64_t threads = std::min(workers_, items);
  for (int64_t i = 0; i < threads; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto total = static_cast<int64_t>(plan_.size());
  while (true) {
    work_cv_.wait(lock, [&] {
      return stop_ || claim_batch_ >= total || claim_batch_ < consumed_ + options_.prefetch;
    });
    if (stop_ || claim_batch_ >= total) return;
    const int64_t b = claim_batch_, k = claim_pos_;
    const auto batch_len = static_cast<int64_t>(plan_[b].size());
    if (++claim_pos_ == batch_len) {
      ++claim_batch_;
      claim_pos_ = 0;
      if (claim_batch_ >= total) work_cv_.notify_all();  // idle workers may exit now
    }
    Slot& slot = slots_[b];
    if (k == 0) {
      slot.items.resize(batch_len);
      slot.errors.resize(batch_len);
      slot.remaining = batch_len;
    }
    const int64_t index = plan_[b][k];
    const int64_t epoch = epoch_;
    lock.unlock();

    LoadedSample item;
    std::exception_ptr error;
    bool skip = false;
    std::string reason;
    try {
      item = load_sample(samples_[index], cfg_, options_.augment,
                         sample_seed(options_.seed, epoch, index));
    } catch (const UserError& e) {
      skip = cfg_.on_bad_image == "skip" || options_.skip_bad_images;
      reason = e.what();
      error = std::current_exception();
    } catch (const std::exception& e) {
      skip = options_.skip_bad_images;
      reason = e.what();
      error = std::current_exception();
    } catch (...) {
      error = std::current_exception();
    }

    lock.lock();
    if (skip) {
      if (skipped_paths_.insert(samples_[index].image).second) {
        skipped_.push_back({samples_[index].image, reason});
        if (options_.skip_bad_images) {
          qfae::log("data")->warn("{}: {} (skipped; the other images go on)",
                                  samples_[index].image, first_line(reason));
        } else {
          qfae::log("data")->warn("skipping a bad image (data.on_bad_image: skip): {}", reason);
        }
      }
    } else if (error) {
      slot.errors[k] = error;
    } else {
      slot.items[k] = std::move(item);
    }
    if (--slot.remaining == 0) {
      lock.unlock();
      try {
        finish_slot(b, slot);  // only this thread touches a slot whose items are all in
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      slot.ready = true;
      ready_cv_.notify_all();
    }
  }
}

void Loader::finish_slot(int64_t b, Slot& slot) {
  for (const auto& e : slot.errors) {
    if (e) {
      slot.error = e;  // the first failing sample of the batch, whatever the thread timing
      return;
    }
  }
  std::vector<torch::Tensor> images, masks;
  std::vector<int64_t> labels;
  for (size_t k = 0; k < slot.items.size(); ++k) {
    if (!slot.items[k].image.defined()) continue;  // skipped
    const int64_t index = plan_[b][k];
    images.push_back(slot.items[k].image);
    masks.push_back(slot.items[k].mask);
    labels.push_back(samples_[index].label);
    slot.batch.indices.push_back(index);
    slot.batch.paths.push_back(samples_[index].image);
  }
  slot.items.clear();
  if (images.empty()) return;
  if (options_.pin_memory) {
    // Stacked straight into page-locked memory by this worker: the copy to the GPU can then
    // overlap the previous step instead of waiting on a staging copy.
    auto sizes = images.front().sizes().vec();
    sizes.insert(sizes.begin(), static_cast<int64_t>(images.size()));
    slot.batch.images = torch::empty(sizes, images.front().options().pinned_memory(true));
    torch::stack_out(slot.batch.images, images);
  } else {
    slot.batch.images = torch::stack(images);
  }
  slot.batch.masks = torch::stack(masks);
  slot.batch.labels = torch::tensor(labels, torch::kInt64);
}

int64_t Loader::batches_consumed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consumed_;
}

bool Loader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  while (consumed_ < static_cast<int64_t>(plan_.size())) {
    ready_cv_.wait(lock, [&] {
      const auto it = slots_.find(consumed_);
      return it != slots_.end() && it->second.ready;
    });
    Slot slot = std::move(slots_.at(consumed_));
    slots_.erase(consumed_);
    ++consumed_;
    lock.unlock();
    work_cv_.notify_all();
    if (slot.error) {
      stop_workers();  // the epoch ends here; no thread is left behind
      std::rethrow_exception(slot.error);
    }
    if (slot.batch.images.defined() || options_.shards > 1 || options_.keep_empty) {
      batch = std::move(slot.batch);
      return true;
    }
    lock.lock();  // every sample of this batch was skipped: on to the next one
  }
  lock.unlock();
  for (auto& t : threads_) t.join();  // all work is done; workers have exited or are exiting
  threads_.clear();
  return false;
}

}  // namespace qfae::data
