// The collectives of data-parallel training and evaluation, on PyTorch's own c10d: a TCPStore
// for the rendezvous, Gloo for host tensors and control (and for everything on the CPU), NCCL for
// CUDA tensors where the build has it. c10d's headers stay in communicator.cpp.
//
// Failures: every collective waits at most the timeout given at construction. When one fails (a
// peer closed its connection, or the timeout passed), the ranks' heartbeats in the store tell
// which rank was lost and whether it died or hung, and RankLost says so.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "qfae/dist/world.h"

namespace qfae::dist {

// A collective started and not yet waited for.
class Pending {
 public:
  Pending() = default;
  explicit Pending(std::function<void()> wait) : wait_(std::move(wait)) {}
  // Blocks until it is done (RankLost when it failed); later calls return at once.
  void wait();

 private:
  std::function<void()> wait_;
};

class Communicator {
 public:
  // Joins `world` (size > 1): the store at MASTER_ADDR:MASTER_PORT (rank 0 hosts it unless
  // torchrun's agent does), then the process groups. Waits up to `timeout` for all ranks to
  // join; RankLost names who is missing.
  Communicator(const World& world, torch::Device device, std::chrono::milliseconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  const World& world() const;
  int rank() const { return world().rank; }
  int size() const { return world().size; }
  bool leader() const { return world().leader(); }
  torch::Device device() const;
  std::chrono::milliseconds timeout() const;

  // Tensors on device() (any dtype), in place: every rank ends with `root`'s values.
  void broadcast(std::vector<torch::Tensor> tensors, int root = 0);
  // Starts summing `flat` (contiguous, on device()) over the ranks, in place.
  Pending all_reduce_sum(torch::Tensor flat);
  // The sums over the ranks of host numbers (control group).
  std::vector<double> sum(std::vector<double> values);
  // The stop signal every rank must act on: the highest any rank has seen (0 = none), the same
  // on every rank. Called after each training step.
  int agree_stop(int local_signal);
  // Every rank's `rows` ((n_r, k) float64 on the CPU, n_r may differ), stacked in rank order:
  // the same (sum n_r, k) tensor on every rank.
  torch::Tensor all_gather_rows(const torch::Tensor& rows);
  // Every rank's `rows` (CPU, any dtype, the same trailing shape; rows may differ in number)
  // stacked in rank order on `root`; an undefined tensor on the other ranks.
  torch::Tensor gather_rows(const torch::Tensor& rows, int root = 0);
  void barrier();
  // Best effort, before this rank exits on an error: the others' RankLost quotes `what`.
  void announce_failure(const std::string& what) noexcept;
  // The step this rank is at, reported by its heartbeat (to tell a hung rank from a slow one).
  void set_progress(int64_t step);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfae::dist
