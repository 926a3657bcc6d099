// Thread count and device resolution.
#include "qfae/util/runtime.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <thread>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string blas_threading_advice(int openblas_parallel, int threads, const char* wait_policy) {
  if (openblas_parallel != 1 || threads < 2) return "";
  if (wait_policy && std::string(wait_policy) == "passive") return "";
  return "this OpenBLAS runs its own thread pool (Debian's libopenblas0-pthread), which fights "
         "LibTorch's OpenMP threads for the cores: steps run 2 to 5 times slower. Select "
         "libopenblas0-openmp (bash scripts/install-deps.sh does), or set OMP_WAIT_POLICY=passive";
}

void init_threads(int threads) {
  torch::set_num_threads(threads > 0 ? threads : usable_cores());
  static bool advised = false;
  if (advised) return;
  advised = true;
  // openblas_get_parallel, when an OpenBLAS is loaded (Debian's LibTorch links the system BLAS).
  using GetParallel = int (*)();
  const auto get = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  const auto advice = blas_threading_advice(get ? get() : -1, torch::get_num_threads(),
                                            std::getenv("OMP_WAIT_POLICY"));
  if (!advice.empty()) log("threads")->warn("{}", advice);
}

torch::Device resolve_device(const std::string& spec, const std::string& key) {
  if (spec == "auto" || spec.empty()) {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  static const std::regex kCuda(R"(cuda(:(\d+))?)");
  std::smatch m;
  if (std::regex_match(spec, m, kCuda)) {
    if (!torch::cuda::is_available()) {
      throw UserError(key + ": '" + spec + "' requested but this build or machine has no CUDA");
    }
    const int index = m[2].matched ? std::stoi(m[2].str()) : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      throw UserError(key + ": '" + spec + "' but only " +
                      std::to_string(torch::cuda::device_count()) + " CUDA device(s) exist");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw UserError(key + ": '" + spec + "' is not a device; expected auto, cpu, cuda or cuda:N");
}

}  // namespace qfae
