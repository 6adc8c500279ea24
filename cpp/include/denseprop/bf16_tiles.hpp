// The AMX kernel: a 32 × 32 block of C in four tiles (tmm4–tmm7) accumulated from two tiles of
// packed A (tmm0, tmm1: 16 rows × 32 bf16 each) and two of packed B (tmm2, tmm3: 16 pairs of k ×
// 16 columns), 32 values of k per round. The same code runs over the real tile instructions
// (AmxTiles) or over ModelTiles, a software model of the four it uses (load, dot-product-
// accumulate, store, zero) on the same bytes, which tests the blocking and packing anywhere.
// Every tile is configured full (16 rows × 64 bytes): packing pads the operands to whole tiles.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "bf16.hpp"

namespace denseprop::bf16 {

template <class Tiles>
void tile_block(const Bits* a, const Bits* b0, const Bits* b1, Index kn, float* c, Index ldc,
                bool load_c) {
  const Index sc = ldc * Index(sizeof(float));
  float* c1 = c + 16 * ldc;
  if (load_c) {
    Tiles::template load<4>(c, sc);
    Tiles::template load<5>(c + 16, sc);
    Tiles::template load<6>(c1, sc);
    Tiles::template load<7>(c1 + 16, sc);
  } else {
    Tiles::template zero<4>();
    Tiles::template zero<5>();
    Tiles::template zero<6>();
    Tiles::template zero<7>();
  }
  for (Index k = 0; k < kn; k += 32) {  // a chunk of A, 16 pairs of k of each B panel
    Tiles::template load<0>(a + k * 32, 64);
    Tiles::template load<1>(a + k * 32 + 16 * 32, 64);
    Tiles::template load<2>(b0 + k * 16, 64);
    Tiles::template load<3>(b1 + k * 16, 64);
    Tiles::template dot<4, 0, 2>();
    Tiles::template dot<5, 0, 3>();
    Tiles::template dot<6, 1, 2>();
    Tiles::template dot<7, 1, 3>();
  }
  Tiles::template store<4>(c, sc);
  Tiles::template store<5>(c + 16, sc);
  Tiles::template store<6>(c1, sc);
  Tiles::template store<7>(c1 + 16, sc);
}

// The model: eight registers of 16 rows × 64 bytes per thread, as the hardware keeps them, and
// TDPBF16PS as Intel's manual states it: row by row, over pairs of k, the even element's product
// added before the odd one's, each addition rounded to nearest even; bf16 inputs that are
// denormal are read as zero and denormal results flushed to zero.
struct ModelTiles {
  struct Register {
    alignas(64) unsigned char bytes[16 * 64];
  };
  static Register& reg(int i) {
    thread_local Register regs[8];
    return regs[i];
  }
  static void configure() {}
  static void release() {}
  template <int I> static void zero() { std::memset(reg(I).bytes, 0, sizeof(Register)); }
  template <int I> static void load(const void* base, Index stride) {
    for (int r = 0; r < 16; ++r)
      std::memcpy(reg(I).bytes + 64 * r, static_cast<const unsigned char*>(base) + r * stride, 64);
  }
  template <int I> static void store(void* base, Index stride) {
    for (int r = 0; r < 16; ++r)
      std::memcpy(static_cast<unsigned char*>(base) + r * stride, reg(I).bytes + 64 * r, 64);
  }
  template <int C, int A, int B> static void dot() {
    Bits a[16][32], b[16][32];
    float c[16][16];
    std::memcpy(a, reg(A).bytes, sizeof a);
    std::memcpy(b, reg(B).bytes, sizeof b);
    std::memcpy(c, reg(C).bytes, sizeof c);
    for (int m = 0; m < 16; ++m)
      for (int k = 0; k < 16; ++k)
        for (int n = 0; n < 16; ++n)
          for (int t = 0; t < 2; ++t)
            c[m][n] = flushed(c[m][n] + daz(a[m][2 * k + t]) * daz(b[k][2 * n + t]));
    std::memcpy(reg(C).bytes, c, sizeof c);
  }

 private:
  static float daz(Bits h) { return (h & 0x7f80u) == 0 ? widen(Bits(h & 0x8000u)) : widen(h); }
  static float flushed(float f) {
    return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
  }
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

// The real tiles. The instructions are written out (GCC's tile macros stringify their register
// numbers and do not tell the compiler that a store writes memory); they assemble without
// -mamx flags, and run only once the process holds the tile permission (request_amx).
#define DENSEPROP_TILE_LOAD(I) \
  if constexpr (I_ == I)       \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #I::"r"(base), "r"(stride) : "memory");
#define DENSEPROP_TILE_STORE(I) \
  if constexpr (I_ == I)        \
    __asm__ volatile("tilestored %%tmm" #I ", (%0,%1,1)" ::"r"(base), "r"(stride) : "memory");
#define DENSEPROP_TILE_ZERO(I) \
  if constexpr (I_ == I) __asm__ volatile("tilezero %%tmm" #I::);
#define DENSEPROP_TILE_DOT(C, A, B)            \
  if constexpr (C_ == C && A_ == A && B_ == B) \
    __asm__ volatile("tdpbf16ps %%tmm" #B ", %%tmm" #A ", %%tmm" #C::);

struct AmxTiles {
  static void configure() {
    struct alignas(64) {
      std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
      std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
      std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
    } config;
    __asm__ volatile("ldtilecfg %0" ::"m"(config));
  }
  static void release() { __asm__ volatile("tilerelease" ::); }
  template <int I_> static void zero() {
    DENSEPROP_TILE_ZERO(4);
    DENSEPROP_TILE_ZERO(5);
    DENSEPROP_TILE_ZERO(6);
    DENSEPROP_TILE_ZERO(7);
  }
  template <int I_> static void load(const void* base, Index stride) {
    DENSEPROP_TILE_LOAD(0);
    DENSEPROP_TILE_LOAD(1);
    DENSEPROP_TILE_LOAD(2);
    DENSEPROP_TILE_LOAD(3);
    DENSEPROP_TILE_LOAD(4);
    DENSEPROP_TILE_LOAD(5);
    DENSEPROP_TILE_LOAD(6);
    DENSEPROP_TILE_LOAD(7);
  }
  template <int I_> static void store(void* base, Index stride) {
    DENSEPROP_TILE_STORE(4);
    DENSEPROP_TILE_STORE(5);
    DENSEPROP_TILE_STORE(6);
    DENSEPROP_TILE_STORE(7);
  }
  template <int C_, int A_, int B_> static void dot() {
    DENSEPROP_TILE_DOT(4, 0, 2);
    DENSEPROP_TILE_DOT(5, 0, 3);
    DENSEPROP_TILE_DOT(6, 1, 2);
    DENSEPROP_TILE_DOT(7, 1, 3);
  }
};

#undef DENSEPROP_TILE_LOAD
#undef DENSEPROP_TILE_STORE
#undef DENSEPROP_TILE_ZERO
#undef DENSEPROP_TILE_DOT

#endif

// Linux grants the tile registers' state to a process only when it asks; without it the first
// tile instruction kills the process. Returns "" when granted, else why not.
inline std::string request_amx() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long get_permission = 0x1022, request_permission = 0x1023, xtiledata = 18;
  if (syscall(SYS_arch_prctl, request_permission, xtiledata) != 0)
    return std::string("the kernel refused the AMX tile state (arch_prctl: ") +
           std::strerror(errno) + ")";
  unsigned long granted = 0;
  if (syscall(SYS_arch_prctl, get_permission, &granted) != 0 || !(granted & (1ul << xtiledata)))
    return "the kernel did not grant the AMX tile state";
  return "";
#else
  return "AMX tiles are used on Linux x86-64 only";
#endif
}

}  // namespace denseprop::bf16
