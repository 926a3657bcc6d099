// Process-wide runtime set-up: thread count, device choice.
#pragma once
#include <torch/types.h>

#include <string>

namespace qfae {

// The cores this process may run on: its affinity mask (which Slurm, taskset and containers
// narrow), else the machine's. Every "one per core" in qfae counts these.
int usable_cores();

// Debian's LibTorch starts with one thread; use every usable core unless `threads` > 0 says
// otherwise.
void init_threads(int threads = 0);

// "auto" (cuda when available), "cpu", "cuda", "cuda:N" -> a device; UserError on anything else
// or on CUDA requested where it is not available. `key` names the option in error messages.
torch::Device resolve_device(const std::string& spec, const std::string& key = "device");

}  // namespace qfae
