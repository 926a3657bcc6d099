// The peak `qfae bench` compares with, measured in the same run: the throughput of a dense square
// matrix product on the bench's device at the precision its steps compute in.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "qfae/anomaly/precision.h"

namespace qfae::bench {

struct MatmulProbe {
  int64_t n = 0;        // (n, n) @ (n, n)
  std::string dtype;    // "fp32", "tf32" (float32 with TF32 products) or "bf16"
  int64_t reps = 0;     // timed products
  double seconds = 0;   // their wall time
  double tflops = 0;    // 2 n^3 reps / seconds / 1e12
};

// Two untimed products, then products until `min_seconds` have passed (at least 3), synchronised
// with the device. bf16 multiplies bf16 tensors; tf32 float32 tensors with TF32 allowed (CUDA).
MatmulProbe probe_matmul(torch::Device device, anomaly::Precision precision, int64_t n = 2048,
                         double min_seconds = 0.3);

}  // namespace qfae::bench
