// The matmul probe of qfae bench: its count of products, time and TFLOP/s agree, and it multiplies
// in the precision asked for.
#include <gtest/gtest.h>

#include "qfae/bench/matmul_probe.h"

TEST(MatmulProbe, ThroughputIsTwoNCubedPerProductOverTheTime) {
  const auto p = qfae::bench::probe_matmul(torch::kCPU, qfae::anomaly::Precision::kFp32,
                                           /*n=*/64, /*min_seconds=*/0.01);
  EXPECT_EQ(p.n, 64);
  EXPECT_EQ(p.dtype, "fp32");
  EXPECT_GE(p.reps, 3);
  EXPECT_GE(p.seconds, 0.01);
  EXPECT_NEAR(p.tflops, 2.0 * 64 * 64 * 64 * static_cast<double>(p.reps) / p.seconds / 1e12,
              1e-12 * p.tflops);
  const auto b = qfae::bench::probe_matmul(torch::kCPU, qfae::anomaly::Precision::kBf16, 32, 0);
  EXPECT_EQ(b.dtype, "bf16");
  EXPECT_EQ(b.reps, 3) << "at least 3 products, even with no time asked for";
  EXPECT_GT(b.tflops, 0.0);
}
