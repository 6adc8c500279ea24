// The CPU's instruction-set features, as python/denseprop/_native.py names them in its table of
// compiled variants. A feature counts only when the CPU has it (CPUID) and the operating system
// saves its registers across context switches (XGETBV): a kernel that disables AVX-512 state
// leaves CPUID's bits set, and code using zmm registers would then fault.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace denseprop::bindings {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

// XCR0, the register states the OS enables; readable only when CPUID says OSXSAVE.
inline std::uint64_t xgetbv0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (std::uint64_t(edx) << 32) | eax;
}

inline std::vector<std::string> cpu_features() {
  std::vector<std::string> found;
  unsigned a = 0, b = 0, c = 0, d = 0;
  auto bit = [](unsigned reg, int i) { return ((reg >> i) & 1u) != 0; };
  auto add = [&found](bool present, const char* name) {
    if (present) found.emplace_back(name);
  };

  if (!__get_cpuid(1, &a, &b, &c, &d)) return found;
  const bool osxsave = bit(c, 27);
  const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_state = (xcr0 & 0x6) == 0x6;           // SSE and AVX registers
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;         // and opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // AMX: XTILECFG and XTILEDATA
  add(bit(d, 26), "sse2");
  add(bit(c, 0), "sse3");
  add(bit(c, 9), "ssse3");
  add(bit(c, 13), "cx16");
  add(bit(c, 19), "sse4_1");
  add(bit(c, 20), "sse4_2");
  add(bit(c, 23), "popcnt");
  add(bit(c, 26), "xsave");
  add(ymm_state, "ymm_state");
  add(zmm_state, "zmm_state");
  add(bit(c, 28) && ymm_state, "avx");
  add(bit(c, 12) && ymm_state, "fma");
  add(bit(c, 29), "f16c");
  add(bit(c, 22), "movbe");

  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    add(bit(b, 3), "bmi1");
    add(bit(b, 5) && ymm_state, "avx2");
    add(bit(b, 8), "bmi2");
    add(bit(b, 16) && zmm_state, "avx512f");
    add(bit(b, 17) && zmm_state, "avx512dq");
    add(bit(b, 28) && zmm_state, "avx512cd");
    add(bit(b, 30) && zmm_state, "avx512bw");
    add(bit(b, 31) && zmm_state, "avx512vl");
    add(bit(c, 11) && zmm_state, "avx512_vnni");
    add(bit(d, 23) && zmm_state, "avx512_fp16");
    add(bit(d, 24) && tile_state, "amx_tile");
    add(bit(d, 22) && tile_state, "amx_bf16");
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) add(bit(a, 5) && zmm_state, "avx512_bf16");
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) {
    add(bit(c, 0), "lahf_lm");
    add(bit(c, 5), "lzcnt");
  }
  return found;
}

#else

// Elsewhere only what the compiler was told: aarch64's baseline includes NEON.
inline std::vector<std::string> cpu_features() {
#if defined(__ARM_NEON)
  return {"neon"};
#else
  return {};
#endif
}

#endif

}  // namespace denseprop::bindings
