// Test support: the device a test runs on. QFAE_TEST_DEVICE=cuda (or cuda:N) moves the tests that
// ask for it onto the GPU (scripts/checks/device-check.sh sets it); unset or "cpu" keeps them on
// the CPU.
#pragma once
#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace qfae::test {

inline torch::Device test_device() {
  const char* spec = std::getenv("QFAE_TEST_DEVICE");
  if (spec == nullptr || *spec == '\0') return torch::kCPU;
  return torch::Device(std::string(spec));
}

}  // namespace qfae::test
