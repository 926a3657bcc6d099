// CPUID-based detection of the CPU's bf16 units.
#include "qfae/util/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define QFAE_X86 1
#endif

namespace qfae {

#ifdef QFAE_X86
namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) return Regs{};
  return r;
}

// XCR0: the register states the OS saves on a context switch (valid when OSXSAVE is set).
uint64_t xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned reg, int n) { return (reg >> n) & 1U; }

std::string brand() {
  if (cpuid(0x80000000).a < 0x80000004) return "";
  char text[49] = {};
  for (unsigned i = 0; i < 3; ++i) {
    const Regs r = cpuid(0x80000002 + i);
    std::memcpy(text + 16 * i, &r, 16);
  }
  std::string s(text);
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

}  // namespace

CpuBf16Support detect_cpu_bf16() {
  CpuBf16Support out;
  out.cpu = brand();
  const unsigned max_leaf = cpuid(0).a;
  const Regs l1 = cpuid(1);
  if (max_leaf < 7 || !bit(l1.c, 27)) return out;  // no leaf 7, or no OSXSAVE (no XCR0 to read)
  const uint64_t xcr = xcr0();
  const Regs l7 = cpuid(7, 0);
  const Regs l7s1 = cpuid(7, 1);
  // AVX-512 state: SSE, AVX, opmask, upper ZMM0-15 and ZMM16-31 (XCR0 bits 1, 2, 5, 6, 7).
  const bool avx512_state = (xcr & 0xE6) == 0xE6;
  // AMX tile state: XTILECFG and XTILEDATA (XCR0 bits 17, 18).
  const bool amx_state = ((xcr >> 17) & 3) == 3;
  const bool amx_bf16 = bit(l7.d, 22) && bit(l7.d, 24);  // AMX-BF16 and AMX-TILE
  const bool avx512f = bit(l7.b, 16);
  const bool avx512_bf16 = l7.a >= 1 && bit(l7s1.a, 5);  // leaf 7 sub-leaf 1 EAX
  if (amx_bf16 && amx_state) {
    out.supported = true;
    out.units = "AMX";
  } else if (avx512f && avx512_bf16 && avx512_state) {
    out.supported = true;
    out.units = "AVX512-BF16";
  }
  return out;
}

#else

CpuBf16Support detect_cpu_bf16() { return {}; }

#endif

const CpuBf16Support& cpu_bf16_support() {
  static const CpuBf16Support support = [] {
    CpuBf16Support s = detect_cpu_bf16();
    const char* env = std::getenv("QFAE_CPU_BF16");
    if (env && (std::strcmp(env, "0") == 0 || std::strcmp(env, "off") == 0)) {
      s.hidden = s.supported;
      s.supported = false;
      s.units.clear();
    }
    return s;
  }();
  return support;
}

}  // namespace qfae

#undef QFAE_X86
