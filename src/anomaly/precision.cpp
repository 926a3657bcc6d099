// Precision names, their fallback off CUDA, and the scope that applies one.
#include "qfae/anomaly/precision.h"

#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::anomaly {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp32:
    default:
      return "fp32";
  }
}

namespace {
Precision parse(const std::string& name, const std::string& key) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "bf16") return Precision::kBf16;
  throw UserError(key + ": '" + name + "' is not one of fp32, tf32, bf16");
}
}  // namespace

Precision resolve_precision(const std::string& name, torch::Device device, const std::string& key) {
  const Precision p = parse(name, key);
  return device.is_cuda() ? p : Precision::kFp32;
}

bool precision_falls_back(const std::string& name, torch::Device device) {
  return !device.is_cuda() && name != "fp32";
}

Precision resolve_precision_warning(const std::string& name, torch::Device device,
                                    const std::string& key) {
  const Precision p = resolve_precision(name, device, key);
  if (precision_falls_back(name, device)) {
    log("precision")
        ->warn("{}: {} applies on CUDA only; computing in fp32 on {}", key, name, device.str());
  }
  return p;
}

PrecisionScope::PrecisionScope(Precision precision, torch::Device device)
    : cuda_(device.is_cuda()), autocast_(cuda_ && precision == Precision::kBf16) {
  if (cuda_) {
    tf32_before_ = compat::cuda_tf32_state();
    compat::set_cuda_tf32(precision == Precision::kTf32);
  }
}

PrecisionScope::~PrecisionScope() {
  if (cuda_) compat::set_cuda_tf32_state(tf32_before_);
}

}  // namespace qfae::anomaly
