// Products with bfloat16 operands and float32 accumulation: C = α A B (+ C), A (M × K) and B
// (K × N) read from float32 memory in any strides and rounded to bfloat16 (nearest even) as
// they are packed. Three kernels compute them:
//   amx          Intel AMX tiles (bf16_tiles.hpp), 32 × 32 blocks of C, 1024 FLOP/cycle/core;
//   avx512_bf16  vdpbf16ps (bf16_avx512.hpp) on the same packed operands;
//   emulated     the operands rounded into float32 buffers, then the float32 product: the same
//                rounding of the operands on any CPU, for correctness, not speed.
// amx_model runs the AMX kernel's very code over a software model of the tile instructions, so
// that its blocking, packing and tile bookkeeping are tested on CPUs without AMX.
//
// The packed layouts, shared by the AMX and AVX512_BF16 kernels, each made of the 64-byte rows
// that the tiles load, so that a tile is 1 KiB of consecutive memory:
//   A: chunks of 32 rows × 32 k, [Mp/32][Kp/32][32][32], Mp and Kp rounded up to 32 with zeros
//      (an AMX tile is 16 of those rows; a block of C takes two);
//   B: pairs of k, in panels of 16 columns: [Np/16][Kp/2][16][2], Np rounded up to 32. A panel's
//      16 × 2 bf16 of one pair of k are the 64 bytes of one tile row, or one zmm register.
//
// Deterministic: products are split over blocks of rows or columns of C, never over k, and
// each element's sum runs over k in the same order whatever the split: results are bitwise the
// same for any thread count within one kernel.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "types.hpp"

namespace denseprop::bf16 {

using Bits = std::uint16_t;

// float32 → bfloat16, rounded to nearest even; a NaN stays a (quiet) NaN, ±inf stays ±inf.
inline Bits round(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return Bits((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return Bits(u >> 16);
}

inline float widen(Bits h) {
  const std::uint32_t u = std::uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// f rounded to bfloat16 and back: the value the bf16 products use.
inline float rounded(float f) { return widen(round(f)); }

enum class Kernel { emulated, avx512_bf16, amx, amx_model };
inline constexpr const char* kernel_names[] = {"emulated", "avx512_bf16", "amx", "amx_model"};

// The kernel every bf16 product of this process uses; denseprop._native chooses it at import.
inline std::atomic<Kernel>& kernel() {
  static std::atomic<Kernel> chosen{Kernel::emulated};
  return chosen;
}

// A float32 operand: element (r, c) at data[r * row_stride + c * col_stride].
struct Operand {
  const float* data;
  Index rows, cols, row_stride, col_stride;
  float at(Index r, Index c) const { return data[r * row_stride + c * col_stride]; }
};

// Operands over memory as it lies: a row-major rows × cols matrix, or the transpose of one
// (memory's rows are its columns).
inline Operand rows_of(const float* p, Index rows, Index cols) { return {p, rows, cols, cols, 1}; }
inline Operand cols_of(const float* p, Index rows, Index cols) { return {p, rows, cols, 1, rows}; }

inline Index round_up(Index n, Index to) { return (n + to - 1) / to * to; }

// Two values rounded to bfloat16 as one 32-bit pair, lo in the low half: a pair of k as the
// packed B holds it. Written on 32-bit lanes, so that the loops below vectorise.
inline std::uint32_t round_pair(float lo, float hi) {
  return std::uint32_t(round(lo)) | (std::uint32_t(round(hi)) << 16);
}

// A's chunk of 32 × 32 holding row r and column c starts here; rows of a chunk are 32 apart.
inline Index a_chunk(Index r, Index c, Index kp) { return (r / 32 * (kp / 32) + c / 32) * 1024; }

// Rows [r0, r1) of A packed (multiples of 32, r1 up to Mp).
inline void pack_a_rows(const Operand& a, Index kp, Bits* out, Index r0, Index r1) {
  const Index m = a.rows, k = a.cols;
  if (a.col_stride == 1) {
    for (Index r = r0; r < r1; ++r) {
      const float* src = a.data + r * a.row_stride;
      const Index n = r < m ? k : 0;
      for (Index c0 = 0; c0 < kp; c0 += 32) {
        Bits* dst = out + a_chunk(r, c0, kp) + (r % 32) * 32;
        if (c0 + 32 <= n)
          for (Index c = 0; c < 32; ++c) dst[c] = round(src[c0 + c]);
        else
          for (Index c = 0; c < 32; ++c) dst[c] = c0 + c < n ? round(src[c0 + c]) : Bits(0);
      }
    }
    return;
  }
  // Rows of A are columns of memory (A = dZᵀ): each chunk read along memory's rows.
  for (Index r = r0; r < r1; r += 32) {
    const Index rows = std::max<Index>(0, std::min<Index>(32, m - r));
    for (Index c0 = 0; c0 < kp; c0 += 32) {
      const Index cols = std::max<Index>(0, std::min<Index>(32, k - c0));
      Bits chunk[32][32] = {};  // [column][row]
      for (Index c = 0; c < cols; ++c) {
        const float* src = a.data + (c0 + c) * a.col_stride + r;
        for (Index q = 0; q < rows; ++q) chunk[c][q] = round(src[q]);
      }
      Bits* dst = out + a_chunk(r, c0, kp);
      for (Index q = 0; q < 32; ++q)
        for (Index c = 0; c < 32; ++c) dst[q * 32 + c] = chunk[c][q];
    }
  }
}

// Panels [p0, p1) of B packed: out[p][kk][j][t] = B[2kk + t][16p + j], as 32-bit pairs.
inline void pack_b_panels(const Operand& b, Index kp, Bits* out, Index p0, Index p1) {
  const Index k = b.rows, n = b.cols;
  const auto at = [&](Index row, Index col) { return row < k && col < n ? b.at(row, col) : 0.0f; };
  const auto panel = [&](Index p) { return reinterpret_cast<std::uint32_t*>(out + p * kp * 16); };
  if (b.row_stride == 1) {
    // B = Wᵀ: a column of B is a row of memory, whose pairs are adjacent; 16 × 16 blocks of
    // pairs are transposed through L1.
    for (Index p = p0; p < p1; ++p) {
      const Index col = 16 * p;
      std::uint32_t* dst = panel(p);
      for (Index kk = 0; kk < kp / 2; kk += 16) {
        std::uint32_t block[16][16];
        for (Index j = 0; j < 16; ++j) {
          const float* src = b.data + (col + j) * b.col_stride + 2 * kk;
          if (col + j < n && 2 * kk + 32 <= k)
            for (Index t = 0; t < 16; ++t) block[j][t] = round_pair(src[2 * t], src[2 * t + 1]);
          else
            for (Index t = 0; t < 16; ++t)
              block[j][t] = round_pair(at(2 * (kk + t), col + j), at(2 * (kk + t) + 1, col + j));
        }
        for (Index t = 0; t < 16; ++t)
          for (Index j = 0; j < 16; ++j) dst[(kk + t) * 16 + j] = block[j][t];
      }
    }
    return;
  }
  // B's rows are memory's rows: a pair of k is two rows, interleaved; read along the rows, 16
  // panels at a time (a panel's walk down k alone would touch a page per row).
  for (Index g = p0; g < p1; g += 16)
    for (Index kk = 0; kk < kp / 2; ++kk)
      for (Index p = g; p < std::min(p1, g + 16); ++p) {
        std::uint32_t* dst = panel(p) + kk * 16;
        const Index col = 16 * p;
        const float* r0 = b.data + 2 * kk * b.row_stride + col * b.col_stride;
        const float* r1 = r0 + b.row_stride;
        if (b.col_stride == 1 && col + 16 <= n && 2 * kk + 2 <= k)
          for (Index j = 0; j < 16; ++j) dst[j] = round_pair(r0[j], r1[j]);
        else
          for (Index j = 0; j < 16; ++j)
            dst[j] = round_pair(at(2 * kk, col + j), at(2 * kk + 1, col + j));
      }
}

// The packed operands and a block of C, per calling thread: a network's calls are serialised,
// and each thread's buffers grow to the largest product it has made, then stay.
struct Scratch {
  Buffer<Bits> a, b;
  Buffer<float> rounded_a, rounded_b;  // the emulated kernel's
  static Scratch& of_this_thread() {
    thread_local Scratch scratch;
    return scratch;
  }
};

// A 32 × 32 block of C += Ã B̃ over k values (a multiple of 32) from packed A's chunks (1024
// values each, one per 32 k) and two panels of B (512 values per 32 k), each from the same k on:
// into c (row stride ldc, in floats), starting from what c holds when `load_c`, else from 0.
using BlockKernel = void (*)(const Bits* a, const Bits* b0, const Bits* b1, Index k, float* c,
                             Index ldc, bool load_c);

// One thread's share of C: rows [m0, m1) and columns [n0, n1), multiples of 32 but at the ends.
// Blocked for the caches: C's mc × nc part stays in L2 while k runs in runs of kc, long ones,
// since each run loads and stores the C tiles again (kc = 256 took twice as long as 1024 on the
// "Intel(R) Xeon(R) Processor" with AMX, family 6 model 207); within a run a 32-row block of A is
// held while the columns pass. A block of C whose rows and columns all lie in C and take α = 1 is
// accumulated in C itself; the others in `part`, then scaled and added into C. Sums over k keep one
// order whatever the blocking: C is float32 between runs, as in the tiles.
inline void blocks(BlockKernel kernel, const Bits* pa, const Bits* pb, Index m, Index n, Index kp,
                   float* c, float alpha, bool accumulate, Index m0, Index m1, Index n0, Index n1) {
  constexpr Index mc = 256, nc = 256, kc = 1024;
  thread_local Buffer<float> part(mc * nc);
  for (Index mb = m0; mb < m1; mb += mc)
    for (Index nb = n0; nb < n1; nb += nc) {
      const Index me = std::min(m1, mb + mc), ne = std::min(n1, nb + nc);
      for (Index kb = 0; kb < kp; kb += kc) {
        const Index kn = std::min(kc, kp - kb);
        for (Index i = mb; i < me; i += 32) {
          const Bits* a = pa + a_chunk(i, kb, kp);
          for (Index j = nb; j < ne; j += 32) {
            const Bits* b0 = pb + (j / 16) * kp * 16 + kb * 16;
            const Bits* b1 = b0 + kp * 16;
            if (alpha == 1.0f && i + 32 <= m && j + 32 <= n) {
              kernel(a, b0, b1, kn, c + i * n + j, n, kb > 0 || accumulate);
              continue;
            }
            float* block = part.data() + (i - mb) * nc + (j - nb);
            kernel(a, b0, b1, kn, block, nc, kb > 0);
            if (kb + kn < kp) continue;
            const Index rows = std::min<Index>(32, m - i), cols = std::min<Index>(32, n - j);
            for (Index r = 0; r < rows; ++r) {
              float* dst = c + (i + r) * n + j;
              const float* src = block + r * nc;
              if (accumulate)
                for (Index q = 0; q < cols; ++q) dst[q] += alpha * src[q];
              else
                for (Index q = 0; q < cols; ++q) dst[q] = alpha * src[q];
            }
          }
        }
      }
    }
}

}  // namespace denseprop::bf16
