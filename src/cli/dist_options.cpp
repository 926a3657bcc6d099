// --nproc and --dist-timeout, the rank's device, joining the job.
#include "qfae/cli/dist_options.h"

#include <algorithm>
#include <chrono>

#include "qfae/cli/common.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace qfae::cli {

void add_dist_options(CLI::App& app, DistOptions& options, const std::string& nproc_help) {
  app.add_option("--nproc", options.nproc, nproc_help)->check(CLI::Range(1, 1024));
  app.add_option("--dist-timeout", options.timeout_s,
                 "Data-parallel: seconds a rank waits for the others (to start, or at a step) "
                 "before it stops with exit code 5 and an error naming the rank that died or hung")
      ->check(finite_positive());
}

void check_nproc(int nproc, const dist::World& world) {
  if (nproc > 1 && world.distributed()) {
    throw UserError("--nproc " + std::to_string(nproc) + ": this process is already " +
                    world.describe() + "; leave --nproc to the command without a launcher");
  }
}

int check_launch(const DistOptions& options, const std::string& device_spec,
                 int64_t global_batch) {
  const int n = options.nproc;
  const auto device = resolve_device(device_spec);
  if (device.is_cuda()) {
    const auto gpus = static_cast<int>(torch::cuda::device_count());
    if (n > gpus) {
      throw UserError("--nproc " + std::to_string(n) + ": one rank per GPU, and this machine has " +
                      std::to_string(gpus) + " (device: " + device_spec + ")");
    }
  } else {
    const int cores = usable_cores();
    if (n > cores) {
      throw UserError("--nproc " + std::to_string(n) + ": on the CPU the ranks share this "
                      "machine's " + std::to_string(cores) + " cores, and more ranks than cores "
                      "only add memory and waiting; give at most " + std::to_string(cores));
    }
  }
  if (global_batch > 0 && global_batch % n != 0) {
    throw UserError("train.batch_size: " + std::to_string(global_batch) +
                    " is the global batch and must divide by the " + std::to_string(n) +
                    " ranks of --nproc " + std::to_string(n));
  }
  return n;
}

torch::Device rank_device(torch::Device device, const dist::World& world) {
  if (!world.distributed() || !device.is_cuda()) return device;
  if (device.index() > 0) {
    log("dist")->warn("device {}: a data-parallel job uses one device per rank; rank {} takes "
                      "cuda:{} (LOCAL_RANK)", device.str(), world.rank, world.local_rank);
  }
  return resolve_device("cuda:" + std::to_string(world.local_rank), "LOCAL_RANK");
}

std::unique_ptr<dist::Communicator> join_world(const dist::World& world, torch::Device device,
                                               const DistOptions& options) {
  if (!world.distributed()) return nullptr;
  return std::make_unique<dist::Communicator>(
      world, device, std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000)));
}

}  // namespace qfae::cli
