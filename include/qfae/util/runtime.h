// Process-wide runtime set-up: thread count, device choice.
#pragma once
#include <torch/types.h>

#include <string>

namespace qfae {

// Debian's LibTorch starts with one thread; use every core unless `threads` > 0 says otherwise.
void init_threads(int threads = 0);

// "auto" (cuda when available), "cpu", "cuda", "cuda:N" -> a device; UserError on anything else
// or on CUDA requested where it is not available. `key` names the option in error messages.
torch::Device resolve_device(const std::string& spec, const std::string& key = "device");

}  // namespace qfae
