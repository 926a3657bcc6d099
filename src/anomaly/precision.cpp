// Precision names, their fallback where the device cannot run them, and the scope that applies one.
#include "qfae/anomaly/precision.h"

#include <mutex>
#include <set>
#include <utility>

#include "qfae/util/cpu_features.h"
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

// True the first time a (key, value) pair is seen in this process.
bool first_time(const std::string& key, const std::string& name) {
  static std::mutex mutex;
  static std::set<std::pair<std::string, std::string>> seen;
  const std::lock_guard<std::mutex> lock(mutex);
  return seen.emplace(key, name).second;
}
}  // namespace

Precision resolve_precision(const std::string& name, torch::Device device, const std::string& key) {
  const Precision p = parse(name, key);
  if (device.is_cuda()) return p;
  return p == Precision::kBf16 && cpu_bf16_support().supported ? Precision::kBf16
                                                               : Precision::kFp32;
}

bool precision_falls_back(const std::string& name, torch::Device device) {
  return resolve_precision(name, device, "precision") != parse(name, "precision");
}

std::string fallback_note(const std::string& name, torch::Device device, const std::string& key) {
  parse(name, key);
  if (!precision_falls_back(name, device)) return "";
  if (name != "bf16" || device.type() != torch::kCPU) {
    return key + ": " + name + " applies on CUDA only; computing in fp32 on " + device.str();
  }
  const auto& cpu = cpu_bf16_support();
  return key + ": bf16 needs a CPU with AMX or AVX512-BF16 units, " +
         (cpu.hidden ? std::string("which QFAE_CPU_BF16=0 hides")
                     : "which this one (" + (cpu.cpu.empty() ? "unknown" : cpu.cpu) + ") lacks") +
         "; computing in fp32";
}

Precision resolve_precision_warning(const std::string& name, torch::Device device,
                                    const std::string& key) {
  const Precision p = resolve_precision(name, device, key);
  if (!first_time(key, name)) return p;
  if (const auto note = fallback_note(name, device, key); !note.empty()) {
    log("precision")->warn("{}", note);
  } else if (p == Precision::kBf16 && device.type() == torch::kCPU) {
    const auto& cpu = cpu_bf16_support();
    log("precision")->info("{}: bf16 on the CPU's {} units ({})", key, cpu.units, cpu.cpu);
  }
  return p;
}

PrecisionScope::PrecisionScope(Precision precision, torch::Device device)
    : cuda_(device.is_cuda()), autocast_(device.type(), precision == Precision::kBf16) {
  if (cuda_) {
    tf32_before_ = compat::cuda_tf32_state();
    compat::set_cuda_tf32(precision == Precision::kTf32);
  }
}

PrecisionScope::~PrecisionScope() {
  if (cuda_) compat::set_cuda_tf32_state(tf32_before_);
}

}  // namespace qfae::anomaly
