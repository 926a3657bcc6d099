// Process-wide runtime set-up: thread count, device choice.
#pragma once
#include <torch/types.h>

#include <string>

namespace qfae {

// The cores this process may run on: its affinity mask (which Slurm, taskset and containers
// narrow), else the machine's. Every "one per core" in qfae counts these.
int usable_cores();

// Debian's LibTorch starts with one thread; use every usable core unless `threads` > 0 says
// otherwise. Warns once (blas_threading_advice) when the OpenBLAS loaded runs its own thread pool.
void init_threads(int threads = 0);

// The advice for a BLAS threading layout that slows LibTorch down, or "" when there is none.
// `openblas_parallel` is OpenBLAS's openblas_get_parallel() (0 sequential, 1 its own pthreads,
// 2 OpenMP; -1: no OpenBLAS loaded), `threads` LibTorch's intra-op threads, `wait_policy` the
// OMP_WAIT_POLICY environment variable (null when unset). OpenBLAS's own pthreads and LibTorch's
// OpenMP threads, which spin after each parallel region, then share the cores: the brain config's
// steps ran 2.3 times, the demo's training 5 times slower here (docs/performance.md).
std::string blas_threading_advice(int openblas_parallel, int threads, const char* wait_policy);

// "auto" (cuda when available), "cpu", "cuda", "cuda:N" -> a device; UserError on anything else
// or on CUDA requested where it is not available. `key` names the option in error messages.
torch::Device resolve_device(const std::string& spec, const std::string& key = "device");

}  // namespace qfae
