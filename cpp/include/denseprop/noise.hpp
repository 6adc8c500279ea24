// Gaussian noise from a counter-based generator: the noise of an optimizer step depends only on
// (seed, step), so an optimizer restored with its seed and step count continues the same stream.
//
//   words    SplitMix64 (Steele, Lea & Flood 2014) started at x = mix(mix(seed) + step):
//            word k of the step is mix(x + (k + 1) γ), γ = 0x9E3779B97F4A7C15
//   uniforms in (0, 1]: (53 bits + 1) / 2^53 for double, one word each; for float one word
//            gives two, (bits 40–63 + 1) / 2^24 and (bits 16–39 + 1) / 2^24
//   normals  Marsaglia's polar method: uniforms 2k and 2k+1 give the point
//            (x, y) = (2u - 1, 2u' - 1), kept when 0 < s = x² + y² < 1 (π/4 of them); then x f
//            and y f with f = √(−2 ln s / s) are two independent N(0, 1) values
//
// Points are drawn 512 at a time; the c kept ones of such a round give the next c values their
// x f and the c after those their y f (the last round stops where the values end). No sine or
// cosine is needed, so every transcendental function is vectorised in both precisions.
#pragma once

#include <algorithm>
#include <cstdint>

#include "types.hpp"

namespace denseprop {

inline std::uint64_t splitmix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Where a counter-based stream starts: SplitMix64 folded over the seed, then over each part
// added in turn. (seed, step) for DP-SGD's noise, (seed, epoch) for a shuffle, (seed, step,
// stream, layer) for a dropout mask; word i of the stream is splitmix64(key + i γ).
template <class... Parts> std::uint64_t stream_key(std::uint64_t seed, Parts... parts) {
  std::uint64_t key = splitmix64(seed);
  ((key = splitmix64(key + std::uint64_t(parts))), ...);
  return key;
}

// (n + 1) / 2^bits for the n in `bits` bits of a word starting at `shift`: a uniform in (0, 1].
template <class T, int bits> T unit_interval(std::uint64_t word, int shift) {
  constexpr T scale = T(1) / T(std::uint64_t(1) << bits);
  return T(((word >> shift) & ((std::uint64_t(1) << bits) - 1)) + 1) * scale;
}

// The next point of the square (-1, 1]², two uniforms from one word (float) or two (double).
template <class T> void next_point(std::uint64_t& word, T& a, T& b) {
  constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;
  if constexpr (sizeof(T) == 4) {
    const std::uint64_t w = splitmix64(word += gamma);
    a = unit_interval<T, 24>(w, 40), b = unit_interval<T, 24>(w, 16);
  } else {
    a = unit_interval<T, 53>(splitmix64(word += gamma), 11);
    b = unit_interval<T, 53>(splitmix64(word += gamma), 11);
  }
  a = T(2) * a - T(1), b = T(2) * b - T(1);
}

// v[i] += stddev · N(0, 1) for i in [0, n), from the stream of (seed, step).
template <class T>
void add_gaussian_noise(T* v, Index n, T stddev, std::uint64_t seed, std::uint64_t step) {
  constexpr Index round = 512;
  Eigen::Array<T, round, 1> x, y, s;
  std::uint64_t word = stream_key(seed, step);
  for (Index done = 0; done < n;) {
    Index kept = 0;
    for (Index k = 0; k < round; ++k) {
      T a, b;
      next_point(word, a, b);
      const T r = a * a + b * b;
      x[kept] = a, y[kept] = b, s[kept] = r;  // kept or overwritten: no branch to mispredict
      kept += (r > T(0)) & (r < T(1));
    }
    s.head(kept) = stddev * (T(-2) * s.head(kept).log() / s.head(kept)).sqrt();
    const Index first = std::min(kept, n - done);
    Vec<T>(v + done, first).array() += x.head(first) * s.head(first);
    done += first;
    const Index second = std::min(kept, n - done);
    Vec<T>(v + done, second).array() += y.head(second) * s.head(second);
    done += second;
  }
}

}  // namespace denseprop
