// The numeric precision a phase runs in (train.precision, eval.precision, qfae bench --precision).
#pragma once
#include <torch/torch.h>

#include <string>

#include "qfae/util/torch_compat.h"

namespace qfae::anomaly {

// fp32: strict float32 (TF32 off for cuBLAS and cuDNN). tf32: float32 tensors, TF32 matrix
// products. bf16: bf16 autocast over the forward pass and the loss. tf32 and bf16 are CUDA
// features: elsewhere the phase runs in fp32.
enum class Precision { kFp32, kTf32, kBf16 };

const char* precision_name(Precision p);
// "fp32" | "tf32" | "bf16" (UserError naming `key` otherwise) as it will run on `device`.
Precision resolve_precision(const std::string& name, torch::Device device, const std::string& key);
// True when `name` asks for something the device cannot do.
bool precision_falls_back(const std::string& name, torch::Device device);
// resolve_precision, and a warning naming `key` when the device falls back to fp32: for the one
// place that reads a setting for a run (a scorer built at every validation stays quiet).
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
  compat::CudaBf16Autocast autocast_;
};

}  // namespace qfae::anomaly
