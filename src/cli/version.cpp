// `qfae version`: versions of qfae and its libraries, and whether CUDA is usable.
#include <opencv2/core/version.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

#include <iostream>

#include "qfae/cli/common.h"

namespace qfae::cli {

Command add_version_command(CLI::App& app) {
  auto* sub = app.add_subcommand("version", "Print the versions of qfae, LibTorch and OpenCV, "
                                            "and whether CUDA is available");
  return {sub, [] {
            std::cout << "qfae " << QFAE_VERSION << "\n"
                      << "LibTorch " << TORCH_VERSION << "\n"
                      << "OpenCV " << CV_VERSION << "\n"
                      << "CUDA available: " << (torch::cuda::is_available() ? "yes" : "no");
            if (torch::cuda::is_available()) {
              std::cout << " (" << torch::cuda::device_count() << " device(s))";
            }
            std::cout << "\n";
            return 0;
          }};
}

}  // namespace qfae::cli
