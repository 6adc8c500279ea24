// The AVX512_BF16 kernel: vdpbf16ps on AMX's packed operands. One row of a B panel (a pair of k,
// 16 columns) is one zmm register; a pair of A's values is broadcast beside it, so that each
// instruction adds a 2-deep dot product to 16 columns of one row of C. Eight rows × 32 columns
// of C stay in 16 registers while k runs.
#pragma once

#include "bf16.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace denseprop::bf16 {

__attribute__((target("avx512f,avx512bf16"))) inline void dot_block(const Bits* a, const Bits* b0,
                                                                    const Bits* b1, Index kn,
                                                                    float* c, Index ldc,
                                                                    bool load_c) {
  for (Index r0 = 0; r0 < 32; r0 += 8) {
    __m512 acc[8][2];
    for (int r = 0; r < 8; ++r)
      for (int h = 0; h < 2; ++h)
        acc[r][h] = load_c ? _mm512_loadu_ps(c + (r0 + r) * ldc + 16 * h) : _mm512_setzero_ps();
    for (Index kk = 0; kk < kn / 2; ++kk) {
      const __m512bh x0 = (__m512bh)_mm512_loadu_si512(b0 + kk * 32);
      const __m512bh x1 = (__m512bh)_mm512_loadu_si512(b1 + kk * 32);
      const Bits* pairs = a + (kk / 16) * 1024 + r0 * 32 + (kk % 16) * 2;  // see a_chunk
      for (int r = 0; r < 8; ++r) {
        std::int32_t pair;
        std::memcpy(&pair, pairs + r * 32, sizeof pair);
        const __m512bh y = (__m512bh)_mm512_set1_epi32(pair);
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], y, x0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], y, x1);
      }
    }
    for (int r = 0; r < 8; ++r)
      for (int h = 0; h < 2; ++h) _mm512_storeu_ps(c + (r0 + r) * ldc + 16 * h, acc[r][h]);
  }
}

}  // namespace denseprop::bf16

#endif
