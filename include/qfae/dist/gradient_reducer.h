// Averages the gradients of data-parallel training over the ranks as DistributedDataParallel's
// reducer does: the parameters are split into buckets (in reverse order, roughly the order
// backward produces their gradients), a hook on each parameter copies its gradient into its
// bucket, and a full bucket's all-reduce starts at once, while backward still computes the rest.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "qfae/dist/communicator.h"

namespace qfae::dist {

struct ReducerOptions {
  int64_t bucket_bytes = 25 << 20;       // DDP's bucket_cap_mb = 25
  int64_t first_bucket_bytes = 1 << 20;  // DDP's first bucket: starts communication early
};

class GradientReducer {
 public:
  // Buckets `parameters` (each requiring grad, one dtype and device) and hooks them.
  GradientReducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                  ReducerOptions options = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before backward: clears the parameters' gradients and the buckets' state.
  void prepare();
  // After backward: starts the buckets still waiting (a parameter backward did not reach adds
  // zeros, the same on every rank), waits for all, and sets each parameter's gradient to the
  // mean over the ranks (a view into its bucket).
  void finish();

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t bucket_numel(int64_t i) const { return buckets_[i].flat.numel(); }
  // Seconds the last finish() waited for communication that backward did not hide.
  double last_wait_seconds() const { return last_wait_s_; }

 private:
  struct Slot {
    int64_t bucket = 0, offset = 0;
  };
  struct Bucket {
    torch::Tensor flat;
    int64_t numel = 0;             // of its members together
    std::vector<int64_t> members;  // indices into parameters_
    int64_t ready = 0;
    bool started = false;
    Pending pending;
  };
  void on_gradient(int64_t index, const torch::Tensor& grad);
  // Starts every full bucket whose predecessors have started (the ranks must issue them in the
  // same order).
  void start_ready_buckets();

  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Slot> slots_;
  std::vector<bool> arrived_;
  std::vector<Bucket> buckets_;
  int64_t next_bucket_ = 0;
  std::vector<unsigned> hooks_;
  double last_wait_s_ = 0;
};

}  // namespace qfae::dist
