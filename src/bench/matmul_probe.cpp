// The matmul probe of `qfae bench` (bench/matmul_probe.h).
#include "qfae/bench/matmul_probe.h"

#include <torch/torch.h>

#include <chrono>

#include "qfae/util/torch_compat.h"

namespace qfae::bench {

MatmulProbe probe_matmul(torch::Device device, anomaly::Precision precision, int64_t n,
                         double min_seconds) {
  using Clock = std::chrono::steady_clock;
  TORCH_CHECK(n >= 1, "probe_matmul: n >= 1 expected, got ", n);
  torch::NoGradGuard no_grad;
  const auto dtype = precision == anomaly::Precision::kBf16 ? torch::kBFloat16 : torch::kFloat32;
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  auto out = torch::empty({n, n}, options);
  const anomaly::PrecisionScope scope(precision, device);  // TF32 on or off (CUDA)
  for (int i = 0; i < 2; ++i) torch::mm_out(out, a, b);
  compat::synchronize(device);
  MatmulProbe probe;
  probe.n = n;
  probe.dtype = anomaly::precision_name(precision);
  const auto start = Clock::now();
  double elapsed = 0;
  while (probe.reps < 3 || elapsed < min_seconds) {
    torch::mm_out(out, a, b);
    compat::synchronize(device);
    ++probe.reps;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  probe.seconds = elapsed;
  const double nd = static_cast<double>(n);
  probe.tflops = 2 * nd * nd * nd * static_cast<double>(probe.reps) / elapsed / 1e12;
  return probe;
}

}  // namespace qfae::bench
