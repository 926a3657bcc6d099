// The bf16 detection against the Linux kernel's own reading of CPUID and XCR0 (/proc/cpuinfo).
#include "qfae/util/cpu_features.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

// The first processor's "flags" and "model name" lines, or nothing where there is no /proc.
struct CpuInfo {
  bool read = false;
  std::set<std::string> flags;
  std::string model;
};

CpuInfo cpuinfo() {
  CpuInfo info;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && info.model.empty()) info.model = value;
    if (key == "flags" && !info.read) {
      std::istringstream words(value);
      for (std::string w; words >> w;) info.flags.insert(w);
      info.read = true;
    }
  }
  return info;
}

TEST(CpuFeatures, Bf16UnitsAreTheOnesTheKernelReports) {
  const auto info = cpuinfo();
  if (!info.read) GTEST_SKIP() << "no /proc/cpuinfo flags on this system";
  const auto got = qfae::detect_cpu_bf16();
  // The kernel lists a feature only where the CPU has it and the kernel enabled its state.
  const bool amx = info.flags.count("amx_bf16") && info.flags.count("amx_tile");
  const bool avx512 = info.flags.count("avx512_bf16") && info.flags.count("avx512f");
  EXPECT_EQ(got.supported, amx || avx512);
  EXPECT_EQ(got.units, amx ? "AMX" : avx512 ? "AVX512-BF16" : "");
  if (!info.model.empty()) {
    // The brand string, which the kernel prints with its padding removed.
    EXPECT_EQ(got.cpu, info.model);
  }
}

TEST(CpuFeatures, TheCachedAnswerFollowsTheEnvironmentOverride) {
  const auto& cached = qfae::cpu_bf16_support();
  const char* env = std::getenv("QFAE_CPU_BF16");
  const bool hidden = env && (std::string(env) == "0" || std::string(env) == "off");
  EXPECT_EQ(cached.supported, !hidden && qfae::detect_cpu_bf16().supported);
  EXPECT_EQ(cached.hidden, hidden && qfae::detect_cpu_bf16().supported);
  EXPECT_EQ(&cached, &qfae::cpu_bf16_support()) << "detected once";
}

}  // namespace
