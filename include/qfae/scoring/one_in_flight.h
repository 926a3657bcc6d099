// One batch in flight: the caller queues batch k on the device, then the host files batch k-1
// while the device computes. The one copy of that ordering for eval, infer and validation.
#pragma once
#include <functional>
#include <optional>
#include <utility>

namespace qfae::scoring {

// `Item` holds a batch and its PendingOutput (anomaly/anomaly_scorer.h); `file` reads the output (its
// get() waits for that batch only) and does the host work.
template <class Item>
class OneInFlight {
 public:
  explicit OneInFlight(std::function<void(Item&)> file) : file_(std::move(file)) {}

  // Takes a batch whose device work is queued, then files the one before it.
  void push(Item item) {
    std::optional<Item> previous = std::move(pending_);
    pending_.emplace(std::move(item));
    if (previous) file_(*previous);
  }
  // Files the batch still pending, if any.
  void flush() {
    std::optional<Item> last = std::move(pending_);
    pending_.reset();
    if (last) file_(*last);
  }

 private:
  std::function<void(Item&)> file_;
  std::optional<Item> pending_;
};

}  // namespace qfae::scoring
