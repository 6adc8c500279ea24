// One bf16 product, C = α Ã B̃ (+ C), by the chosen kernel (see bf16.hpp): the operands packed
// once each (in parallel), then blocks of C shared by the workers, split over rows or columns of
// C only.
#pragma once

#include <stdexcept>
#include <string>

#include "bf16.hpp"
#include "bf16_avx512.hpp"
#include "bf16_tiles.hpp"
#include "parallel.hpp"

namespace denseprop::bf16 {

// The emulated kernel: both operands rounded into float32 buffers, then the float32 product,
// in blocks of 64 rows of C that are the same whatever the thread count (Eigen's blocking of k
// follows the shape it is given, so a thread's share must not be that shape).
inline void emulated_product(const Operand& a, const Operand& b, float* c, float alpha,
                             bool accumulate, Scratch& s) {
  const Index m = a.rows, k = a.cols, n = b.cols;
  if (Index(s.rounded_a.size()) < m * k) s.rounded_a.resize(m * k);
  if (Index(s.rounded_b.size()) < k * n) s.rounded_b.resize(k * n);
  for (Index r = 0; r < m; ++r)
    for (Index q = 0; q < k; ++q) s.rounded_a[r * k + q] = rounded(a.at(r, q));
  for (Index r = 0; r < k; ++r)
    for (Index q = 0; q < n; ++q) s.rounded_b[r * n + q] = rounded(b.at(r, q));
  const CRowMat<float> rb(s.rounded_b.data(), k, n);
  constexpr Index rows = 64;
  parallel_ranges(m, rows, double(m) * double(n) * double(k), [&](Index r0, Index count) {
    for (Index r = r0; r < r0 + count; r += rows) {
      const Index h = std::min(rows, r0 + count - r);
      const CRowMat<float> ra(s.rounded_a.data() + r * k, h, k);
      RowMat<float> dst(c + r * n, h, n);
      if (accumulate)
        dst.noalias() += alpha * ra * rb;
      else
        dst.noalias() = alpha * ra * rb;
    }
  });
}

inline BlockKernel block_kernel(Kernel kernel) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (kernel == Kernel::amx) return &tile_block<AmxTiles>;
  if (kernel == Kernel::avx512_bf16) return &dot_block;
#endif
  if (kernel == Kernel::amx_model) return &tile_block<ModelTiles>;
  throw std::invalid_argument(std::string("bf16 kernel ") + kernel_names[int(kernel)] +
                              " is not compiled into this module");
}

// A block's tiles are configured on the thread that runs it, and released after.
template <class F> void on_tiles(Kernel kernel, const F& f) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (kernel == Kernel::amx) {
    AmxTiles::configure();
    f();
    AmxTiles::release();
    return;
  }
#endif
  f();
}

// C (m × n, row-major, contiguous) = α Ã B̃, plus C when `accumulate`; Ã and B̃ are A and B
// rounded to bfloat16.
inline void product(const Operand& a, const Operand& b, float* c, float alpha, bool accumulate,
                    Kernel kernel = bf16::kernel().load(std::memory_order_relaxed)) {
  Scratch& s = Scratch::of_this_thread();
  if (kernel == Kernel::emulated) return emulated_product(a, b, c, alpha, accumulate, s);
  const BlockKernel block = block_kernel(kernel);
  const Index m = a.rows, k = a.cols, n = b.cols;
  const Index mp = round_up(m, 32), np = round_up(n, 32), kp = round_up(k, 32);
  if (Index(s.a.size()) < mp * kp) s.a.resize(mp * kp);
  if (Index(s.b.size()) < np * kp) s.b.resize(np * kp);
  Bits *pa = s.a.data(), *pb = s.b.data();
  // Packing reads and writes memory, a few ns a value: shared when there are 250k per thread.
  parallel_ranges(mp, 32, double(mp) * double(kp) * 4,
                  [&](Index r, Index count) { pack_a_rows(a, kp, pa, r, r + count); });
  parallel_ranges(np / 16, 2, double(np) * double(kp) * 4,
                  [&](Index p, Index count) { pack_b_panels(b, kp, pb, p, p + count); });
  // The kernels run 8–16 times the float32 rate: a product is shared at 8× its size.
  const double work = double(mp) * double(np) * double(kp) / 8;
  if (split_rows(m, n))
    parallel_ranges(mp, 32, work, [&](Index r, Index count) {
      on_tiles(kernel,
               [&] { blocks(block, pa, pb, m, n, kp, c, alpha, accumulate, r, r + count, 0, np); });
    });
  else
    parallel_ranges(np, 32, work, [&](Index q, Index count) {
      on_tiles(kernel,
               [&] { blocks(block, pa, pb, m, n, kp, c, alpha, accumulate, 0, mp, q, q + count); });
    });
}

}  // namespace denseprop::bf16
