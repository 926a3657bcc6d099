// What `qfae train` and `qfae eval` share about data-parallel jobs: --nproc, --dist-timeout,
// this rank's device, and joining the job.
#pragma once
#include <CLI/CLI.hpp>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "qfae/dist/communicator.h"
#include "qfae/dist/world.h"

namespace qfae::cli {

struct DistOptions {
  int nproc = 1;
  double timeout_s = 300;
};

// --nproc (described by `nproc_help`) and --dist-timeout.
void add_dist_options(CLI::App& app, DistOptions& options, const std::string& nproc_help);

// UserError when --nproc is given to a process that a launcher already made a rank.
void check_nproc(int nproc, const dist::World& world);

// What can be checked before `qfae ... --nproc N` starts any rank (UserError otherwise): N is at
// most the GPUs (device CUDA) or the cores (CPU), and divides `global_batch` (train.batch_size;
// 0 when the command has none). Returns N.
int check_launch(const DistOptions& options, const std::string& device_spec, int64_t global_batch);

// The device of this rank: cuda:LOCAL_RANK when the config asks for CUDA in a job of several.
torch::Device rank_device(torch::Device device, const dist::World& world);

// The job's Communicator when `world` has several ranks, else null.
std::unique_ptr<dist::Communicator> join_world(const dist::World& world, torch::Device device,
                                               const DistOptions& options);

}  // namespace qfae::cli
