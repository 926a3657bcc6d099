// Bucketed gradient all-reduce started from gradient hooks during backward.
#include "qfae/dist/gradient_reducer.h"

#include <chrono>

namespace qfae::dist {

GradientReducer::GradientReducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                                 ReducerOptions options)
    : comm_(comm), parameters_(std::move(parameters)) {
  TORCH_CHECK(!parameters_.empty(), "GradientReducer needs parameters");
  const auto tensor_options = parameters_.front().options();
  slots_.resize(parameters_.size());
  arrived_.assign(parameters_.size(), false);
  // Reverse order: backward reaches the last layers first.
  int64_t limit = options.first_bucket_bytes, bytes = 0;
  for (int64_t i = static_cast<int64_t>(parameters_.size()) - 1; i >= 0; --i) {
    const auto& p = parameters_[i];
    TORCH_CHECK(p.requires_grad() && p.scalar_type() == parameters_.front().scalar_type() &&
                    p.device() == parameters_.front().device(),
                "GradientReducer: parameters must require grad and share a dtype and device");
    if (buckets_.empty() || bytes >= limit) {
      if (!buckets_.empty()) limit = options.bucket_bytes;
      buckets_.emplace_back();
      bytes = 0;
    }
    auto& b = buckets_.back();
    slots_[i] = {static_cast<int64_t>(buckets_.size()) - 1, b.numel};
    b.members.push_back(i);
    b.numel += p.numel();
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (auto& b : buckets_) b.flat = torch::zeros({b.numel}, tensor_options);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    hooks_.push_back(parameters_[i].register_hook(
        [this, i](torch::Tensor grad) { on_gradient(static_cast<int64_t>(i), grad); }));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < hooks_.size(); ++i) parameters_[i].remove_hook(hooks_[i]);
}

void GradientReducer::prepare() {
  // No gradient left from the last step: AccumulateGrad then stores backward's gradient as
  // it is instead of adding it into the bucket view finish() left there.
  for (auto& p : parameters_) p.mutable_grad() = torch::Tensor();
  std::fill(arrived_.begin(), arrived_.end(), false);
  for (auto& b : buckets_) {
    b.ready = 0;
    b.started = false;
  }
  next_bucket_ = 0;
}

void GradientReducer::on_gradient(int64_t index, const torch::Tensor& grad) {
  if (arrived_[index]) return;  // one gradient per parameter and backward
  arrived_[index] = true;
  const auto& slot = slots_[index];
  auto& b = buckets_[slot.bucket];
  b.flat.narrow(0, slot.offset, grad.numel()).view_as(grad).copy_(grad);
  ++b.ready;
  start_ready_buckets();
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets() &&
         buckets_[next_bucket_].ready == static_cast<int64_t>(buckets_[next_bucket_].members.size())) {
    auto& b = buckets_[next_bucket_++];
    b.started = true;
    b.pending = comm_.all_reduce_sum(b.flat);
  }
}

void GradientReducer::finish() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (arrived_[i]) continue;
    const auto& slot = slots_[i];
    auto& b = buckets_[slot.bucket];
    b.flat.narrow(0, slot.offset, parameters_[i].numel()).zero_();
    arrived_[i] = true;
    ++b.ready;
  }
  start_ready_buckets();
  const auto start = std::chrono::steady_clock::now();
  const double world = static_cast<double>(comm_.size());
  for (auto& b : buckets_) {
    b.pending.wait();
    b.flat.div_(world);
  }
  last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& slot = slots_[i];
    parameters_[i].mutable_grad() =
        buckets_[slot.bucket].flat.narrow(0, slot.offset, parameters_[i].numel())
            .view_as(parameters_[i])
            .detach();  // shares the bucket's memory, not a view: zero_grad may detach_ it
  }
}

}  // namespace qfae::dist
