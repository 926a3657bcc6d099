// `qfae version`: versions of qfae and its libraries, whether CUDA is usable, the CPU's bf16
// units.
#include <opencv2/core/version.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

#include <iostream>

#include "qfae/cli/common.h"
#include "qfae/util/cpu_features.h"

namespace qfae::cli {

Command add_version_command(CLI::App& app) {
  auto* sub = app.add_subcommand("version",
                                 "Print the versions of qfae, LibTorch and OpenCV, whether CUDA "
                                 "is available, and the CPU's bf16 units (what precision bf16 "
                                 "runs in on the CPU)");
  return {sub, [] {
            std::cout << "qfae " << QFAE_VERSION << "\n"
                      << "LibTorch " << TORCH_VERSION << "\n"
                      << "OpenCV " << CV_VERSION << "\n"
                      << "CUDA available: " << (torch::cuda::is_available() ? "yes" : "no");
            if (torch::cuda::is_available()) {
              std::cout << " (" << torch::cuda::device_count() << " device(s))";
            }
            std::cout << "\n";
            const auto& cpu = cpu_bf16_support();
            std::cout << "CPU: " << (cpu.cpu.empty() ? "unknown" : cpu.cpu) << ", bf16 units: "
                      << (cpu.supported ? cpu.units + " (precision bf16 runs in bf16)"
                                        : "none (precision bf16 runs in fp32)")
                      << "\n";
            return 0;
          }};
}

}  // namespace qfae::cli
