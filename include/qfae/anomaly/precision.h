// The numeric precision a phase runs in (train.precision, eval.precision, qfae bench --precision).
#pragma once
#include <torch/torch.h>

#include <string>

#include "qfae/util/torch_compat.h"

namespace qfae::anomaly {

// fp32: strict float32 (TF32 off for cuBLAS and cuDNN). tf32: float32 tensors, TF32 matrix
// products (CUDA only). bf16: bf16 autocast over the forward pass and the loss, on CUDA and on
// CPUs with bf16 units (AMX or AVX512-BF16, cpu_bf16_support). Elsewhere the phase runs in fp32.
enum class Precision { kFp32, kTf32, kBf16 };

const char* precision_name(Precision p);
// "fp32" | "tf32" | "bf16" (UserError naming `key` otherwise) as it will run on `device`.
Precision resolve_precision(const std::string& name, torch::Device device, const std::string& key);
// True when `name` asks for something the device cannot do (UserError when it is no precision).
bool precision_falls_back(const std::string& name, torch::Device device);
// The one line that says why `name` falls back to fp32 on `device` under `key` ("" when it does
// not fall back).
std::string fallback_note(const std::string& name, torch::Device device, const std::string& key);
// resolve_precision, and the fallback note as a warning (or, for bf16 on the CPU, a line naming
// the units), each said once per process for a key and value: a scorer built at every
// validation, or for every checkpoint of an eval, stays quiet after the first.
Precision resolve_precision_warning(const std::string& name, torch::Device device,
                                    const std::string& key);

// For the scope of a forward pass: TF32 on or off as the precision says (on CUDA; the previous
// setting comes back at the end) and bf16 autocast when bf16. Nests. LibTorch's TF32 switches
// are process-wide (at::globalContext), not per thread, which is why each forward sets them and
// puts them back: qfae runs one forward at a time, and the next may want another precision.
class PrecisionScope {
 public:
  PrecisionScope(Precision precision, torch::Device device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool cuda_;
  compat::CudaTf32State tf32_before_;
  compat::Bf16Autocast autocast_;
};

}  // namespace qfae::anomaly
