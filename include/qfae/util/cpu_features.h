// What the CPU offers for bf16 arithmetic, detected at run time (CPUID and the OS's XCR0).
#pragma once
#include <string>

namespace qfae {

struct CpuBf16Support {
  bool supported = false;  // bf16 matrix units the OS has enabled
  std::string units;       // "AMX" | "AVX512-BF16" | "" (none)
  std::string cpu;         // the CPU's brand string ("" where CPUID has none)
  bool hidden = false;     // the CPU has units, which QFAE_CPU_BF16=0 hid
};

// Detected once per process. AMX (AMX-BF16 with the tile state enabled by the OS) or AVX512-BF16
// (with the AVX-512 state enabled) count; other CPUs, and every non-x86 CPU, have no bf16 units
// that LibTorch's CPU kernels use, so bf16 there would be emulated and slower than fp32.
// QFAE_CPU_BF16=0 in the environment reports no units (to compare with fp32 on the same machine).
const CpuBf16Support& cpu_bf16_support();

// The detection itself, without the environment override or the cache.
CpuBf16Support detect_cpu_bf16();

}  // namespace qfae
